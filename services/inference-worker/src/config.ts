import { Type, type Static } from '@sinclair/typebox';
import { S3_OUTAGE_DEFAULTS, loadConfig, logConfigFields, queueConfigFields, redisConfigFields, s3ConfigFields, timerMsField, type Env } from '@btd/shared';

/** Every setting of the inference worker. */
export const WorkerConfigSchema = Type.Object({
  ...redisConfigFields,
  ...queueConfigFields,
  ...s3ConfigFields,
  ...logConfigFields,
  /** Jobs one process runs at once. Inference is CPU-bound, so more than 2 mostly overlaps I/O. */
  concurrency: Type.Integer({
    env: 'WORKER_CONCURRENCY',
    default: 2,
    minimum: 1,
    maximum: 64,
    description: 'Jobs one worker process runs at once (CPU-bound: 1-2 per process; scale with processes).',
  }),
  /**
   * How long a job's lock lasts without renewal. A synchronous forward pass blocks the event
   * loop, so renewal can be late: the lock must outlast the slowest inference many times over.
   */
  lockDurationMs: timerMsField({
    env: 'WORKER_LOCK_DURATION_MS',
    default: 60_000,
    minimum: 1000,
    description: 'Job lock duration; a job whose worker died is retried after about this long.',
  }),
  /** How often the worker looks for jobs whose worker died. */
  stalledIntervalMs: timerMsField({
    env: 'WORKER_STALLED_INTERVAL_MS',
    default: 30_000,
    minimum: 500,
    description: 'How often to look for stalled jobs (whose worker died) and requeue them.',
  }),
  /** A job that kills its worker this many times (e.g. out of memory) fails instead of looping. */
  maxStalledCount: Type.Integer({
    env: 'WORKER_MAX_STALLED_COUNT',
    default: 2,
    minimum: 0,
    description: 'Times a job may stall (worker died) before it is failed.',
  }),
  /**
   * An S3 outage is nothing wrong with the images in flight: their jobs wait for S3 without spending
   * attempts, each for this long in all per outage; past it they fail as for any other error.
   */
  s3OutageBudgetMs: timerMsField({
    env: 'WORKER_S3_OUTAGE_BUDGET_MS',
    default: S3_OUTAGE_DEFAULTS.budgetMs,
    minimum: 0,
    description: 'How long a job waits out an S3 outage (unreachable, time-outs, 5xx, throttling) without spending its attempts; then it fails as for any error (0: no waiting).',
  }),
  /** A job waiting for S3 tries again after about as long as the outage has lasted, at most this long. */
  s3OutageMaxDelayMs: timerMsField({
    env: 'WORKER_S3_OUTAGE_MAX_DELAY_MS',
    default: S3_OUTAGE_DEFAULTS.maxDelayMs,
    minimum: 100,
    description: 'Longest wait between two tries of a job while S3 stays unreachable (the wait grows from 1 s).',
  }),
  /** Where models come from. */
  modelSource: Type.Union([Type.Literal('registry'), Type.Literal('directory')], {
    env: 'MODEL_SOURCE',
    default: 'registry',
    description: 'registry: promoted models from the S3 registry (seeded from MODELS_DIR when empty), with hot reload; directory: MODELS_DIR only.',
  }),
  /** Bundled model artifacts: `<dir>/tumor-binary/`, `<dir>/tumor-type/` (relative to the working directory). */
  modelsDir: Type.String({
    env: 'MODELS_DIR',
    default: 'models',
    minLength: 1,
    description: 'Directory with the bundled artifacts <dir>/tumor-binary and <dir>/tumor-type.',
  }),
  /** How often the registry is polled in case a promotion notice was missed. */
  modelPollIntervalMs: timerMsField({
    env: 'MODEL_POLL_INTERVAL_MS',
    default: 30_000,
    minimum: 1000,
    description: 'Registry poll period, a fallback for missed promotion notices.',
  }),
  /**
   * The models always run on threads of their own, off the event loop. With this set, on a pool
   * with a job's forward passes spread over it, so that one image uses every core: lower latency
   * per image when cores are free, the same throughput when they are all busy. Unset: one thread.
   */
  modelThreads: Type.Boolean({
    env: 'WORKER_MODEL_THREADS',
    default: false,
    description: 'Spread each image over a pool of model threads (true: a job uses every core, lower latency at light load; false: the models run on one thread of their own).',
  }),
  /**
   * With model threads, how many: every model is loaded on each, and a job's forward passes are
   * split into pieces (ensemble members, the locator, rotated copies) spread over them.
   */
  modelThreadCount: Type.Integer({
    env: 'WORKER_MODEL_THREAD_COUNT',
    default: 0,
    minimum: 0,
    maximum: 64,
    description: 'With WORKER_MODEL_THREADS, how many threads the models run on, each forward pass split over them (0: one per core).',
  }),
  /** Bytes of multi-frame originals kept between the jobs of their frames. */
  multiFrameCacheBytes: Type.Integer({
    env: 'WORKER_MULTIFRAME_CACHE_BYTES',
    default: 256 * 1024 * 1024,
    minimum: 0,
    description: 'Bytes of multi-frame DICOM originals kept in memory, so that the jobs of their frames download each file once (0: none kept).',
  }),
  /**
   * Memory the jobs of this process decode and analyse their images in at once, as their headers tell
   * (10 bytes a pixel for a raster image, 16 for a DICOM frame): a job whose image does not fit waits for
   * others to end; one larger than the whole is decoded alone.
   */
  maxInflightDecodeBytes: Type.Integer({
    env: 'WORKER_MAX_INFLIGHT_DECODE_BYTES',
    default: 1024 * 1024 * 1024,
    minimum: 1024 * 1024,
    description: 'Bytes the jobs of one worker process may hold at once decoding their images, by their headers (1 GiB: one 8000x8000 image at a time); a job that does not fit waits, an image larger than the whole is decoded alone.',
  }),
  /** TensorFlow.js backend; unset picks tfjs-node when installed, else wasm. */
  tfBackend: Type.Optional(
    Type.Union([Type.Literal('tensorflow'), Type.Literal('wasm'), Type.Literal('cpu')], {
      env: 'TF_BACKEND',
      description: 'TensorFlow.js backend: tensorflow, wasm or cpu (unset: tensorflow if installed, else wasm).',
    }),
  ),
  /** Port of `/metrics` and `/healthz`; 0 turns the endpoint off. */
  metricsPort: Type.Integer({
    env: 'WORKER_METRICS_PORT',
    default: 0,
    minimum: 0,
    maximum: 65535,
    description: 'Port serving Prometheus /metrics and /healthz (0: off).',
  }),
  /** Hard limit on a graceful shutdown; in-flight jobs past it are recovered by another worker. */
  shutdownTimeoutMs: timerMsField({
    env: 'SHUTDOWN_TIMEOUT_MS',
    default: 30_000,
    minimum: 100,
    description: 'Hard limit for a graceful shutdown (finish in-flight jobs, close connections).',
  }),
  /** Names this process in logs, metrics and refusal reports. */
  workerId: Type.Optional(Type.String({ env: 'WORKER_ID', minLength: 1, description: 'Worker name (default: hostname-pid).' })),
});

/** Validated, frozen worker settings. */
export type WorkerConfig = Static<typeof WorkerConfigSchema>;

/**
 * Reads the worker's settings from the environment, once. Throws `ConfigError` listing every
 * invalid key.
 */
export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  return loadConfig(WorkerConfigSchema, env);
}
