import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import {
  ObjectStore,
  closeRedis,
  createInferenceQueue,
  createProducerConnection,
  createResultsQueue,
  createTrainingQueue,
  createWebhooksQueue,
  once,
  openBucket,
  waitForRedisAtStart,
  type Logger,
} from '@btd/shared';
import { startApiWorkers } from './api-workers.js';
import type { ApiRoutes } from './app.js';
import { loadApiKeyRing, type LoadedKeyRing } from './auth/api-keys.js';
import { readOrCreateSecret } from './auth/local-secret.js';
import type { ApiConfig } from './config.js';
import { createApiContext, type ApiContext, type ApiDependencies } from './context.js';
import { createApiMetrics } from './metrics/api-metrics.js';
import { logConnectionHealth } from './redis-health-log.js';
import { buildServer, listen } from './server.js';
import { startPendingSweeps } from './studies/pending-submissions.js';
import { startRetentionSweeps } from './studies/retention-sweep.js';
import { DecodeMemoryBudget } from './uploads/decode-memory-budget.js';
import { dicomReader } from './intake/dicom-reader.js';

/** A started API: HTTP server plus results and webhook consumers, and the sweep of pending submissions. */
export interface RunningApi {
  /** Base URL it listens on, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly ctx: ApiContext;
  /** Set when no keys were configured and the `local` client's key is in use. */
  readonly local: LoadedKeyRing['local'];
  /** Shutdown step 1: stop accepting requests (in-flight ones finish). */
  stopIntake(): Promise<void>;
  /** Shutdown step 2: stop sweeping pending submissions, let result and webhook jobs in flight finish. */
  drain(): Promise<void>;
  /** Shutdown step 3: close queues, Redis and S3 clients. */
  closeConnections(): Promise<void>;
  /** The three steps in order; safe to call twice. */
  close(): Promise<void>;
}

async function webhookSecretOf(config: ApiConfig): Promise<string> {
  if (config.webhookSecret) return config.webhookSecret;
  return (await readOrCreateSecret(path.resolve(config.dataDir, 'webhook-secret'), 16)).value;
}

/** Options of {@link startApi}. */
export interface StartApiOptions {
  /** Aborted when the API is stopped while it waits for Redis or S3: the start then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Opens Redis and S3 (waiting for them, with a clear error if Redis never answers), and builds the queues. */
async function openDependencies(config: ApiConfig, logger: Logger, signal?: AbortSignal): Promise<ApiDependencies & { local: LoadedKeyRing['local'] }> {
  const { ring, local } = await loadApiKeyRing(config);
  const webhookSecret = await webhookSecretOf(config);
  const redis = createProducerConnection(config.redisUrl);
  logConnectionHealth(redis, 'producer', logger);
  const objectStore = new ObjectStore(config);
  try {
    // Redis and S3 may come up after the API (Docker Compose, Kubernetes): wait for them; a refusal stops the start.
    const wait = { logger, signal };
    await waitForRedisAtStart(redis, config.redisUrl, { ...wait, timeoutMs: config.redisStartupTimeoutMs });
    await openBucket(objectStore, wait);
  } catch (error) {
    redis.disconnect();
    objectStore.close();
    throw error;
  }
  const queues = {
    inference: createInferenceQueue(redis, config.queuePrefix),
    results: createResultsQueue(redis, config.queuePrefix),
    webhooks: createWebhooksQueue(redis, config.queuePrefix),
    training: createTrainingQueue(redis, config.queuePrefix),
  };
  // The queues share the producer connection, whose outages are already logged once.
  for (const queue of Object.values(queues)) queue.on('error', (error) => logger.debug({ err: error, queue: queue.name }, 'queue error'));
  const metrics = createApiMetrics(Object.values(queues));
  const decodeMemory = new DecodeMemoryBudget(config.maxInflightDecodeBytes, metrics.registry);
  const intakeChecks = { dicom: dicomReader(config.intakeDecodeThreads, decodeMemory), decodeMemory };
  return { config, redis, objectStore, queues, keyRing: ring, metrics, webhookSecret, intakeChecks, local };
}

/**
 * Starts the API: dependencies, HTTP server (listening on `config.port`; 0 picks a free one)
 * and the queue consumers. `routes` adds further resources such as `/v1/models`.
 */
export async function startApi(config: ApiConfig, logger: Logger, routes: readonly ApiRoutes[] = [], options: StartApiOptions = {}): Promise<RunningApi> {
  const { local, ...deps } = await openDependencies(config, logger, options.signal);
  const ctx = createApiContext(deps);
  const app = await buildServer(ctx, logger, routes);
  const workers = startApiWorkers(ctx, logger);
  const sweeps = startPendingSweeps(ctx, logger);
  const retention = startRetentionSweeps(ctx, logger);
  const url = await listen(app, config.host, config.port);
  const stopIntake = once(() => app.close());
  const drain = once(async () => {
    await Promise.all([sweeps.close(), retention?.close(), workers.close()]);
  });
  const closeConnections = once(async () => {
    await Promise.allSettled(Object.values(ctx.queues).map((queue) => queue.close()));
    await closeRedis(ctx.redis);
    ctx.objectStore.close();
    await ctx.intakeChecks.dicom.close();
  });
  const close = once(async () => {
    await stopIntake();
    await drain();
    await closeConnections();
  });
  return { url, app, ctx, local, stopIntake, drain, closeConnections, close };
}
