/**
 * @packageDocumentation
 * The btd API gateway: Fastify app, queue consumers and the helpers tests and the start
 * script need to run it in process.
 */
export { startApi, type RunningApi, type StartApiOptions } from './api.js';
export { apiApp, type ApiAppOptions, type ApiRoutes } from './app.js';
export { buildServer, listen } from './server.js';
export { ApiConfigSchema, loadApiConfig, type ApiConfig } from './config.js';
export { createApiContext, type ApiContext, type ApiDependencies } from './context.js';
export { LOCAL_CLIENT, loadApiKeyRing, type ApiClient, type ApiKeyRing } from './auth/api-keys.js';
export { clientOf, requireAdmin } from './plugins/auth.plugin.js';
export { ApiError, notFound } from './errors/api-error.js';
export { recordKeys } from './store/record-keys.js';
export { fingerprintOf } from './studies/fingerprint.js';
export { SUBMISSION_LEASE_MS } from './studies/resume-submission.js';
export { LEFT_ORIGINALS_MAX_TRIES, sweepLeftOriginals, type LeftOriginalsSweepOptions, type SweptOriginals } from './studies/left-originals.js';
export { PENDING_SUBMISSION_AGE_MS, sweepPendingSubmissions, type PendingOutcome, type SettledSubmission, type SweepOptions } from './studies/pending-submissions.js';
export { RETENTION_SWEEP_INTERVAL_MS, sweepRetention, type RetentionSweep, type RetentionSweepOptions } from './studies/retention-sweep.js';
export { SIGNATURE_HEADER, clientWebhookSecret, signWebhook, verifyWebhookSignature } from './webhooks/webhook-signature.js';
export type { StudyView, SubmittedStudy } from './schemas/study.schemas.js';
export type { BatchView } from './schemas/batch.schemas.js';
/** Body of every error answer. */
export type ErrorBody = { statusCode: number; error: string; code: string; message: string; file?: string };
