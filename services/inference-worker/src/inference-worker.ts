import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { INFERENCE_QUEUE, S3Outage, S3_OUTAGE_DEFAULTS, closeWorker, once, type InferenceJob, type Logger, type ObjectStore, type Redis, type ResultsQueue } from '@btd/shared';
import type { WorkerConfig } from './config.js';
import { createInferenceProcessor, postFailure, type InferenceJobReturn } from './inference.processor.js';
import { createOriginalReader } from './original-reader.js';
import { DEFAULT_MAX_INFLIGHT_DECODE_BYTES, createDecodeMemory } from './decode-memory.js';
import { stalledFailureReason, stalledTooOften } from './stalled-failure.js';
import type { ModelProvider } from './model-provider.js';
import type { WorkerMetrics } from './worker-metrics.js';

/** What {@link startInferenceWorker} wires together; the caller owns and closes each of them. */
export interface InferenceWorkerOptions {
  config: Pick<WorkerConfig, 'queuePrefix' | 'concurrency' | 'lockDurationMs' | 'stalledIntervalMs' | 'maxStalledCount'> & {
    workerId?: string | undefined;
    modelThreads?: boolean;
    /** Memory the jobs decode their images in at once (default 1 GiB). */
    maxInflightDecodeBytes?: number;
    /** Multi-frame originals kept between their frames' jobs (default 256 MiB). */
    multiFrameCacheBytes?: number;
    /** The process's shutdown limit; closing waits for jobs in flight for half of it (default 30 s). */
    shutdownTimeoutMs?: number;
  } & Partial<Pick<WorkerConfig, 's3OutageBudgetMs' | 's3OutageMaxDelayMs'>>;
  /** A connection made with `createWorkerConnection` (blocking commands, no request retry limit). */
  connection: Redis;
  store: ObjectStore;
  results: ResultsQueue;
  models: ModelProvider;
  logger: Logger;
  metrics?: WorkerMetrics;
}

/** A consuming worker. */
export interface RunningInferenceWorker {
  readonly worker: Worker<InferenceJob, InferenceJobReturn>;
  /** Stops taking jobs and waits for those in flight, for at most half the shutdown limit. Idempotent. */
  close(): Promise<void>;
}

function isFinalFailure(job: Job, error: Error): boolean {
  return error instanceof UnrecoverableError || error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
}

/**
 * Starts consuming the inference queue. Jobs whose worker died are picked up again after the
 * lock expires (stalled-job recovery); the processor is safe to run twice.
 */
export function startInferenceWorker(options: InferenceWorkerOptions): RunningInferenceWorker {
  const { config, logger, metrics } = options;
  const originals = createOriginalReader(options.store, config.multiFrameCacheBytes ?? 256 * 1024 * 1024);
  const outage = new S3Outage(
    { budgetMs: config.s3OutageBudgetMs ?? S3_OUTAGE_DEFAULTS.budgetMs, maxDelayMs: config.s3OutageMaxDelayMs ?? S3_OUTAGE_DEFAULTS.maxDelayMs },
    logger,
    metrics,
    () => options.store.ping(),
  );
  const decodeMemory = createDecodeMemory(config.maxInflightDecodeBytes ?? DEFAULT_MAX_INFLIGHT_DECODE_BYTES, metrics);
  const processor = createInferenceProcessor({ ...options, originals, decodeMemory, outage, parallelModels: config.modelThreads === true });
  const worker = new Worker<InferenceJob, InferenceJobReturn>(INFERENCE_QUEUE, processor, {
    connection: options.connection,
    prefix: config.queuePrefix,
    concurrency: config.concurrency,
    lockDuration: config.lockDurationMs,
    stalledInterval: config.stalledIntervalMs,
    maxStalledCount: config.maxStalledCount,
    name: config.workerId,
  });
  const observe = (job: Job, outcome: 'completed' | 'failed'): void => {
    metrics?.jobs.inc({ outcome });
    if (job.processedOn) metrics?.jobSeconds.observe({ outcome }, (Date.now() - job.processedOn) / 1000);
  };
  worker.on('completed', (job) => observe(job, 'completed'));
  worker.on('failed', (job, error) => {
    if (!job) return;
    observe(job, 'failed');
    // The processor posts failures itself; this catches jobs failed without running it, such
    // as one that stalled too often. A result's job id is per image, so a second post is a no-op.
    if (isFinalFailure(job, error)) {
      let reason = error.message;
      if (stalledTooOften(job, error)) {
        const stalls = Math.max(job.stalledCounter, config.maxStalledCount + 1);
        reason = stalledFailureReason(stalls, config.maxStalledCount);
        const { studyId, imageId, clientId } = job.data;
        logger.error({ jobId: job.id, queue: INFERENCE_QUEUE, studyId, imageId, clientId, stalls, maxStalledCount: config.maxStalledCount }, 'image failed: the workers processing it stopped too often (it may crash them); failure posted');
      }
      postFailure(options.results, job.data, reason).catch((postError: unknown) => {
        logger.error({ err: postError, jobId: job.id, queue: INFERENCE_QUEUE }, 'could not post a failed result');
      });
    }
  });
  worker.on('stalled', (jobId) => logger.warn({ jobId, queue: INFERENCE_QUEUE }, 'job stalled (its worker died); requeued'));
  worker.on('error', (error) => logger.error({ err: error, queue: INFERENCE_QUEUE }, 'worker error'));
  // Half the shutdown limit, so that the results queue and the store still close in time.
  const close = once(async () => {
    outage.close();
    await closeWorker(worker, (config.shutdownTimeoutMs ?? 30_000) / 2, logger);
  });
  return { worker, close };
}
