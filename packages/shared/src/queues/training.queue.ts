import { Type, type Static } from '@sinclair/typebox';
import type { ConnectionOptions, DefaultJobOptions, Job, Queue } from 'bullmq';
import { ModelTaskSchema } from '../model-task.js';
import { createQueue, deterministicJobId, exponentialBackoff } from './queue-options.js';

/** Name of the queue the API (and the CLI) fill and the trainer drains. */
export const TRAINING_QUEUE = 'training';

/** Job name used for every training job. */
export const TRAINING_JOB_NAME = 'train';

/**
 * Where the training images come from: an object-store prefix holding `<class>/<file>` keys
 * (downloaded to the trainer's cache first), or a folder on the trainer's machine with one
 * sub-folder per class. Either way, the same loader, cache and split as the CLI read it.
 */
export const TrainingDatasetSchema = Type.Union([
  Type.Object(
    { kind: Type.Literal('s3'), prefix: Type.String({ minLength: 1, maxLength: 512, pattern: '^[A-Za-z0-9_./-]+/$' }) },
    { additionalProperties: false },
  ),
  Type.Object(
    { kind: Type.Literal('local'), path: Type.String({ minLength: 1, maxLength: 1024 }) },
    { additionalProperties: false },
  ),
]);

/** Optional knobs passed on to `trainModel`; unset ones take the trainer's defaults. */
export const TrainingHyperParametersSchema = Type.Object(
  {
    epochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 512 })),
    inputSize: Type.Optional(Type.Integer({ minimum: 16, maximum: 512 })),
    seed: Type.Optional(Type.Integer({ minimum: 0 })),
    maxImages: Type.Optional(Type.Integer({ minimum: 2 })),
    /** Serve the candidate averaging copies rotated by these degrees (non-zero, within ±45). */
    testTimeRotations: Type.Optional(
      Type.Array(Type.Union([Type.Number({ minimum: -45, exclusiveMaximum: 0 }), Type.Number({ exclusiveMinimum: 0, maximum: 45 })]), { minItems: 1, maxItems: 8 }),
    ),
    /** Rotate only images whose top probability from the image and its mirror is below this. */
    testTimeRotationsBelow: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);

/** Payload of a training job: what to train on, never image bytes. */
export const TrainingJobSchema = Type.Object(
  {
    task: ModelTaskSchema,
    dataset: TrainingDatasetSchema,
    hyperParameters: Type.Optional(TrainingHyperParametersSchema),
    /** Who asked (an API client id or `cli`); recorded in the registry. */
    requestedBy: Type.String({ minLength: 1, maxLength: 200 }),
    /** Whether a candidate that passes the gate is promoted at once (default true). */
    autoPromote: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** Payload of a training job. */
export type TrainingJob = Static<typeof TrainingJobSchema>;

/** What a client asks for: a training job without `requestedBy`, which the API fills from the caller's key. */
export const TrainingRequestSchema = Type.Omit(TrainingJobSchema, ['requestedBy'], { additionalProperties: false });

/** Phases a training job goes through, in order. */
export const TrainingPhaseSchema = Type.Union([
  Type.Literal('preparing'),
  Type.Literal('training'),
  Type.Literal('evaluating'),
  Type.Literal('publishing'),
  Type.Literal('done'),
]);

/** A phase of a training job. */
export type TrainingPhase = Static<typeof TrainingPhaseSchema>;

/** Metrics of the last finished epoch. */
export const EpochMetricsSchema = Type.Object({
  epoch: Type.Integer(),
  epochs: Type.Integer(),
  loss: Type.Number(),
  accuracy: Type.Number(),
  valLoss: Type.Number(),
  valAccuracy: Type.Number(),
});

/** A trainer that took a training and could not read its local dataset folder, and why. */
export const DatasetRefusalSchema = Type.Object({ trainer: Type.String(), reason: Type.String() });

/**
 * A training handed back to the queue because the trainer that took it could not read its local
 * dataset folder, while it waits for one that can (trainers may have different roots and disks).
 */
export const DatasetWaitSchema = Type.Object({
  /** When a trainer first handed it back, in milliseconds since the epoch. */
  since: Type.Integer(),
  /** The trainers that took it and could not read the folder, and why, the latest last. */
  refusedBy: Type.Array(DatasetRefusalSchema),
  /** The running trainers whose published roots may hold the folder, which it waits for; empty when none. */
  waitingFor: Type.Array(Type.String()),
  /** Since when no running trainer could read it, while none can: it fails once the trainer's TRAINER_DATASET_WAIT_MS has passed. */
  unreadableSince: Type.Optional(Type.Integer()),
});

/** What a training waiting for a trainer that can read its dataset folder keeps in its progress. */
export type DatasetWait = Static<typeof DatasetWaitSchema>;

/** What `job.progress` holds while a training runs. */
export const TrainingProgressSchema = Type.Object({
  phase: TrainingPhaseSchema,
  /** Present once the first epoch has finished. */
  epoch: Type.Optional(Type.Integer()),
  epochs: Type.Optional(Type.Integer()),
  loss: Type.Optional(Type.Number()),
  accuracy: Type.Optional(Type.Number()),
  valLoss: Type.Optional(Type.Number()),
  valAccuracy: Type.Optional(Type.Number()),
  /** Epoch the run resumed after, when it continued from a checkpoint. */
  resumedFromEpoch: Type.Optional(Type.Integer()),
  /**
   * While the training waits out an S3 outage (see `S3Outage`): when it first found S3 unreachable,
   * in milliseconds since the epoch; gone once it gets through the phase that found it so.
   */
  s3UnavailableSince: Type.Optional(Type.Integer()),
  /** The phase that found S3 unreachable. */
  s3UnavailableDuring: Type.Optional(TrainingPhaseSchema),
  /** While the training waits for a trainer that can read its local dataset folder; gone once one reads it. */
  datasetWait: Type.Optional(DatasetWaitSchema),
});

/** Progress of a training job. */
export type TrainingProgress = Static<typeof TrainingProgressSchema>;

/** Measures of a model on a set of images, by name; a rate nothing measured is null, never 0. */
const GateMetricsRecordSchema = Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()]));

/** Return value of a finished training job. */
export const TrainingResultSchema = Type.Object({
  task: ModelTaskSchema,
  /** Registry version the candidate was published as. */
  version: Type.String(),
  contentHash: Type.String(),
  promoted: Type.Boolean(),
  /** Why the gate refused (empty when promoted). */
  reasons: Type.Array(Type.String()),
  /**
   * The candidate's metrics on the gate's evaluation set (`EVAL_SET_*`): `n`, `accuracy`,
   * `sensitivity`, `macroRecall`, a rate null where the set cannot measure it (the sensitivity of a
   * set without tumour images), never 0. Null when no evaluation set is configured (`reasons` says
   * so); outcomes recorded by earlier releases hold `{}` then.
   */
  metrics: Type.Union([GateMetricsRecordSchema, Type.Null()]),
  /**
   * The same measures of the published version on the test split its training held out (from its
   * manifest's `metrics.test`), whether or not an evaluation set is configured: images of the
   * training's own dataset, not the gate's set. Null when the training held out no test image;
   * absent from outcomes recorded by earlier releases.
   */
  testSplitMetrics: Type.Optional(Type.Union([GateMetricsRecordSchema, Type.Null()])),
});

/** Return value of a finished training job. */
export type TrainingResult = Static<typeof TrainingResultSchema>;

/**
 * Trainings are long and rarely fail for transient reasons, so few attempts with a long first
 * delay; finished jobs are kept for a month because `GET /v1/trainings/:id` reads them.
 */
export const TRAINING_JOB_OPTIONS: DefaultJobOptions = Object.freeze({
  attempts: 3,
  backoff: exponentialBackoff(30_000),
  removeOnComplete: { age: 30 * 24 * 3600, count: 1000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 1000 },
});

/** The job id of a training request: the same request id never starts a second training. */
export function trainingJobId(requestId: string): string {
  return deterministicJobId('training', requestId);
}

/** Queue of training jobs. */
export type TrainingQueue = Queue<TrainingJob, TrainingResult>;

/** A job taken from the training queue. */
export type TrainingJobHandle = Job<TrainingJob, TrainingResult>;

/** Creates the training queue (producer side). */
export function createTrainingQueue(connection: ConnectionOptions, prefix: string): TrainingQueue {
  return createQueue<TrainingJob>(TRAINING_QUEUE, connection, prefix, TRAINING_JOB_OPTIONS) as TrainingQueue;
}

/** Enqueues a training; idempotent per `requestId`. */
export async function enqueueTraining(queue: TrainingQueue, requestId: string, payload: TrainingJob): Promise<TrainingJobHandle> {
  return queue.add(TRAINING_JOB_NAME, payload, { jobId: trainingJobId(requestId) });
}
