import { setMaxListeners } from 'node:events';
import {
  closeWorker,
  once,
  readTrainingCancellation,
  S3Outage,
  S3_OUTAGE_DEFAULTS,
  TRAINING_QUEUE,
  type Logger,
  type ModelRegistry,
  type ObjectStore,
  type Redis,
  type TrainingJob,
  type TrainingResult,
} from '@btd/shared';
import { Worker } from 'bullmq';
import type { TrainerConfig } from './config.js';
import type { DatasetReaders } from './dataset-wait.js';
import { removeWorkspaceIfFinished, sweepFinishedWorkspaces } from './finished-workspaces.js';
import { createTrainingProcessor } from './training.processor.js';

/** What {@link startTrainer} needs. */
export interface TrainerDeps {
  config: Pick<
    TrainerConfig,
    'queuePrefix' | 'concurrency' | 'lockDurationMs' | 'workDir' | 'datasetRoots' | 'evalSetTumorBinary' | 'evalSetTumorType' | 'evalMaxImages' | 'gateTolerance'
  > &
    Partial<Pick<TrainerConfig, 's3OutageBudgetMs'>> & {
      /** The process's shutdown limit; closing waits for running trainings to hand back for half of it (default 30 s). */
      shutdownTimeoutMs?: number;
      /** Longest wait of a training between two tries while S3 stays unreachable (default 30 s). */
      s3OutageMaxDelayMs?: number;
    };
  /** A worker connection (`createWorkerConnection`); the trainer also reads the cancellations of its running trainings on it. */
  connection: Redis;
  registry: ModelRegistry;
  store: ObjectStore;
  logger: Logger;
  /** The running trainers' published roots: a training whose local folder this trainer cannot read waits for one that can. */
  readers?: DatasetReaders;
}

/** A running trainer. */
export interface Trainer {
  readonly worker: Worker<TrainingJob, TrainingResult>;
  /** Settles (never rejects) once the workspaces of trainings finished or gone are removed, a sweep the trainer makes as it starts. */
  readonly swept: Promise<void>;
  /** Stops intake, hands running trainings back to the queue (they resume later) and waits; idempotent. */
  close(): Promise<void>;
}

/** Starts consuming the training queue. */
export function startTrainer(deps: TrainerDeps): Trainer {
  const shutdown = new AbortController();
  // Every download of a dataset mirror listens to it, twice while the SDK waits to retry one (S3 unreachable).
  setMaxListeners(64, shutdown.signal);
  const { s3OutageBudgetMs = S3_OUTAGE_DEFAULTS.budgetMs, s3OutageMaxDelayMs = S3_OUTAGE_DEFAULTS.maxDelayMs } = deps.config;
  const processor = createTrainingProcessor({
    registry: deps.registry,
    store: deps.store,
    logger: deps.logger,
    config: deps.config,
    shutdownSignal: shutdown.signal,
    outage: new S3Outage({ budgetMs: s3OutageBudgetMs, maxDelayMs: s3OutageMaxDelayMs }, deps.logger.child({ queue: TRAINING_QUEUE })),
    ...(deps.readers ? { readers: deps.readers } : {}),
    cancellation: (jobId) => readTrainingCancellation(deps.connection, deps.config.queuePrefix, jobId),
  });
  const worker = new Worker<TrainingJob, TrainingResult>(TRAINING_QUEUE, processor, {
    connection: deps.connection,
    prefix: deps.config.queuePrefix,
    concurrency: deps.config.concurrency,
    lockDuration: deps.config.lockDurationMs,
    // Look for stalled jobs at least once per lock period, so a crashed trainer's job is retaken soon after its lock expires.
    stalledInterval: Math.min(30_000, deps.config.lockDurationMs),
    // A trainer killed mid-run leaves its job stalled; it is retaken (and resumed) a few times.
    maxStalledCount: 3,
  });
  worker.on('failed', (job, error) => {
    deps.logger.error({ err: error, jobId: job?.id, queue: TRAINING_QUEUE, attempt: job?.attemptsMade }, 'training failed');
    // A removal cut short by a shutdown is finished by the next start's sweep.
    if (job) {
      removeWorkspaceIfFinished(job, deps.config.workDir).catch((err: unknown) =>
        deps.logger.warn({ err, jobId: job.id, queue: TRAINING_QUEUE }, 'could not remove the workspace of a failed training'),
      );
    }
  });
  worker.on('completed', (job, result) => {
    deps.logger.info({ jobId: job.id, queue: TRAINING_QUEUE, modelVersion: result.version, promoted: result.promoted, reasons: result.reasons }, 'training finished');
  });
  worker.on('error', (error) => deps.logger.error({ err: error }, 'training worker error'));
  const swept = sweepFinishedWorkspaces(deps.connection, deps.config.queuePrefix, deps.config.workDir).then(
    (removed) => {
      if (removed.length > 0) deps.logger.info({ queue: TRAINING_QUEUE, workspaces: removed }, 'removed the workspaces of trainings finished or gone');
    },
    (err: unknown) => deps.logger.warn({ err, queue: TRAINING_QUEUE }, 'could not sweep the workspaces of trainings finished or gone'),
  );
  return {
    worker,
    swept,
    close: once(async () => {
      shutdown.abort();
      await closeWorker(worker, (deps.config.shutdownTimeoutMs ?? 30_000) / 2, deps.logger);
    }),
  };
}
