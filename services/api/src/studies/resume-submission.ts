import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { enqueueInferenceBulk, inferenceJobId, type InferenceJob, type StudyPriority } from '@btd/shared';
import type { ApiContext } from '../context.js';
import type { AcceptedImage } from '../intake/inspect-upload.js';
import type { UnfinishedSubmission } from '../store/idempotency-store.js';
import type { ImageRecord, StudyRecord } from '../store/records.js';
import { whileHolding, type Held } from '../store/redis-lock.js';
import { acceptedResponse } from './study-view.js';

/**
 * How long after its study was created a submission is taken to be in its own request's hands; a
 * retry of one still pending after this resumes it. A live request gets from its records to its
 * jobs well within this (see PENDING_SUBMISSION_AGE_MS), and a claim of its Idempotency-Key or
 * externalId that no record took over lapses after as long. Unlike the sweep, which removes what it
 * cannot complete and so waits far longer, a resumption may guess wrong without harm: it only does
 * what the request would have done (the same bytes to the same keys, jobs by deterministic ids),
 * and a request that fails after it leaves the study alone (its undo checks under the same lock).
 */
export const SUBMISSION_LEASE_MS = 120_000;

/**
 * Lease of a submission's lock. Its holders (the sweep, a resumption, an undo) store or remove a
 * study's originals, which fail after S3_TIMEOUT_MS of silence (30 s by default) with one retry;
 * the lease is renewed while they work, so it bounds only how long a holder that died keeps others out.
 */
const SUBMISSION_LOCK_MS = 2 * 60_000;

/** Runs `work` while holding the submission's lock; `acquired: false` at once when another holds it. */
export async function withSubmissionLock<T>(ctx: ApiContext, studyId: string, work: () => Promise<T>): Promise<Held<T>> {
  return whileHolding(ctx.redis, ctx.keys.submissionLock(studyId), SUBMISSION_LOCK_MS, work);
}

/** Digests already taken, by the buffer they were taken of: a request's fingerprint, its records and STOW-RS each need them. */
const digests = new WeakMap<Uint8Array, string>();

/** SHA-256 (hex) of a file's bytes, computed once per buffer. */
export function fileDigest(bytes: Uint8Array): string {
  let digest = digests.get(bytes);
  if (digest === undefined) {
    digest = createHash('sha256').update(bytes).digest('hex');
    digests.set(bytes, digest);
  }
  return digest;
}

/** The inference jobs of a study's images (one per frame of a multi-frame DICOM original). */
export function inferenceJobsOf(study: StudyRecord, images: readonly ImageRecord[]): { payload: InferenceJob; priority: StudyPriority }[] {
  return images.map((image) => {
    const frame = image.dicom?.frameNumber;
    return {
      payload: { studyId: study.id, imageId: image.id, objectKey: image.objectKey, ...(frame ? { frame: frame - 1 } : {}), clientId: study.clientId },
      priority: study.priority,
    };
  });
}

/** The images of a submission that have no job. A finished image had its job, which may since have been trimmed from the queue. */
export async function imagesWithoutJobs(ctx: ApiContext, images: readonly ImageRecord[]): Promise<ImageRecord[]> {
  const hasJob = await Promise.all(images.map(async (image) => image.state !== 'queued' || Boolean(await ctx.queues.inference.getJob(inferenceJobId(image.id)))));
  return images.filter((_, i) => !hasJob[i]);
}

/** The object keys of `images`' originals that are not in S3. */
export async function absentOriginals(ctx: ApiContext, images: readonly ImageRecord[]): Promise<string[]> {
  const objectKeys = [...new Set(images.map((image) => image.objectKey))];
  const stored = await Promise.all(objectKeys.map((key) => ctx.objectStore.exists(key)));
  return objectKeys.filter((_, i) => !stored[i]);
}

/**
 * Stores the originals the study lacks from the retry's files, matched by content; false (nothing
 * stored) when a record predates the digests or no file matches.
 */
async function restoreOriginals(ctx: ApiContext, images: readonly ImageRecord[], files: readonly AcceptedImage[]): Promise<boolean> {
  const absent = new Set(await absentOriginals(ctx, images));
  const byDigest = new Map(files.map((file) => [fileDigest(file.bytes), file]));
  const restore = images.filter((image, i) => absent.has(image.objectKey) && images.findIndex((other) => other.objectKey === image.objectKey) === i);
  const copies = restore.map((image) => (image.sha256 ? byDigest.get(image.sha256) : undefined));
  if (copies.some((file) => file === undefined)) return false;
  await Promise.all(restore.map((image, i) => ctx.objectStore.put(image.objectKey, copies[i]!.bytes, image.contentType)));
  return true;
}

/** Under the lock: the submission as it stands, resumed if still pending. */
async function resumeLocked(ctx: ApiContext, studyId: string, files: readonly AcceptedImage[], log: FastifyBaseLogger): Promise<UnfinishedSubmission> {
  const study = await ctx.studies.get(studyId);
  if (!study) return { state: 'gone' };
  const images = await ctx.studies.images(study);
  if (!(await ctx.studies.isPending(study.id))) return { state: 'finished', response: acceptedResponse(study, images) };
  const missing = await imagesWithoutJobs(ctx, images);
  if (!(await restoreOriginals(ctx, missing, files))) return { state: 'running' };
  if (missing.length > 0) await enqueueInferenceBulk(ctx.queues.inference, inferenceJobsOf(study, missing));
  await ctx.studies.settlePending(study.id);
  log.info({ studyId, images: missing.length }, 'resumed for a retry a submission whose request stopped before its jobs were enqueued');
  return { state: 'finished', response: acceptedResponse(study, images) };
}

/**
 * What became of the submission of `studyId`, for a retry of it (the same Idempotency-Key or
 * externalId, and the same content, in `files`). A study still pending after
 * {@link SUBMISSION_LEASE_MS} lost its request (an API killed between writing its records and
 * enqueueing its jobs): it is resumed at once instead of waiting for the sweep, its missing
 * originals stored from `files`, its missing jobs enqueued, and it answers as `finished`.
 * `running` while its request may still be at work, or another holds its lock.
 */
export async function resumeSubmission(ctx: ApiContext, studyId: string, files: readonly AcceptedImage[], log: FastifyBaseLogger): Promise<UnfinishedSubmission> {
  const study = await ctx.studies.get(studyId);
  const young = study && (await ctx.studies.isPending(study.id)) && Date.now() - Date.parse(study.createdAt) < SUBMISSION_LEASE_MS;
  if (young) return { state: 'running' };
  const held = await withSubmissionLock(ctx, studyId, () => resumeLocked(ctx, studyId, files, log));
  return held.acquired ? held.value : { state: 'running' };
}
