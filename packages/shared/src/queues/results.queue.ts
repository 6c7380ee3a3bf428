import { Type, type Static } from '@sinclair/typebox';
import type { ConnectionOptions, DefaultJobOptions, Job, Queue } from 'bullmq';
import { ModelTaskSchema } from '../model-task.js';
import { KEEP_COMPLETED, KEEP_FAILED, createQueue, deterministicJobId, exponentialBackoff } from './queue-options.js';

/**
 * Name of the queue through which workers hand results back to the API. A queue rather than
 * a direct call, so a result waits safely in Redis while the API is down.
 */
export const RESULTS_QUEUE = 'results';

/** Job name used for every result message. */
export const RESULT_JOB_NAME = 'result';

const Probabilities = Type.Record(Type.String(), Type.Number({ minimum: 0, maximum: 1 }));

/** Location box in the original image's pixels. */
export const BoxSchema = Type.Object({ x: Type.Number(), y: Type.Number(), width: Type.Number(), height: Type.Number() });

/** Which model produced part of a result. */
export const ModelRefSchema = Type.Object({ task: ModelTaskSchema, name: Type.String(), version: Type.String() });

/**
 * Where the time of one job went, in milliseconds of the job's own clock: models that ran side by
 * side count once for the time they overlapped, so `totalMs` is at least the sum of the other parts
 * (each rounded down to 0.1 ms, the total up). Each model's own timings are in the result document.
 */
export const ResultTimingsSchema = Type.Object({
  /** Reading the original from S3. */
  downloadMs: Type.Number(),
  /** Decoding, cropping and resizing the image for the models (once when they share it). */
  preprocessMs: Type.Number(),
  /** Forward passes, while those of one model or of both ran. */
  modelMs: Type.Number(),
  /** Computing the heatmap and box, while no forward pass ran. */
  heatmapMs: Type.Number(),
  /** Writing the result objects and the overlay after both models ran. */
  uploadMs: Type.Number(),
  /** The whole job on the worker, from its start to its result objects written. */
  totalMs: Type.Number(),
});

/** What the API stores about an image's result; the full detail lives in the result objects. */
export const ResultSummarySchema = Type.Object({
  /** Label of the tumour-or-not model, e.g. `tumor` or `no_tumor`. */
  label: Type.String(),
  /** Probability that the image shows a tumour. */
  tumorProbability: Type.Number({ minimum: 0, maximum: 1 }),
  /** Class probabilities of the tumour-or-not model. */
  probabilities: Probabilities,
  /** Most likely tumour type. */
  typeLabel: Type.String(),
  /** Class probabilities of the tumour-type model. */
  typeProbabilities: Probabilities,
  /** Location of the finding, or null when the heatmap shows none. */
  box: Type.Union([BoxSchema, Type.Null()]),
  /** Models that produced this result. */
  models: Type.Array(ModelRefSchema),
  timings: ResultTimingsSchema,
});

const ImageRef = {
  studyId: Type.String(),
  imageId: Type.String(),
  clientId: Type.String(),
  /** When the worker finished, ISO 8601. */
  finishedAt: Type.String(),
};

/** An image was analysed; its result objects are in the bucket. */
export const ResultSucceededSchema = Type.Object({
  kind: Type.Literal('succeeded'),
  ...ImageRef,
  /** Result JSON per task (see `resultKey`); every task's result is in the image's one document. */
  resultKeys: Type.Record(Type.String(), Type.String()),
  /** Heatmap overlay PNG (see `overlayKey`). */
  overlayKey: Type.String(),
  summary: ResultSummarySchema,
});

/** An image could not be analysed and will not be retried. */
export const ResultFailedSchema = Type.Object({
  kind: Type.Literal('failed'),
  ...ImageRef,
  /** Human-readable reason, shown to the client (e.g. "not a decodable image: ..."). */
  reason: Type.String(),
});

/** A result message: handle it with a `switch (message.kind)` that ends in `assertNever`. */
export const ResultMessageSchema = Type.Union([ResultSucceededSchema, ResultFailedSchema]);

export type ResultSucceeded = Static<typeof ResultSucceededSchema>;
export type ResultFailed = Static<typeof ResultFailedSchema>;
export type ResultMessage = Static<typeof ResultMessageSchema>;
export type ResultSummary = Static<typeof ResultSummarySchema>;
export type ResultTimings = Static<typeof ResultTimingsSchema>;
export type ModelRef = Static<typeof ModelRefSchema>;
export type Box = Static<typeof BoxSchema>;

/** Applying a result is cheap and only fails while the API's stores are down: retry long. */
export const RESULT_JOB_OPTIONS: DefaultJobOptions = Object.freeze({
  attempts: 10,
  backoff: exponentialBackoff(500),
  removeOnComplete: KEEP_COMPLETED,
  removeOnFail: KEEP_FAILED,
});

/**
 * The job id of an image's result: one result per image, so a worker that runs a job twice
 * (after a crash) cannot deliver two.
 */
export function resultJobId(imageId: string): string {
  return deterministicJobId('result', imageId);
}

export type ResultsQueue = Queue<ResultMessage>;
export type ResultJobHandle = Job<ResultMessage>;

/** Creates the results queue. */
export function createResultsQueue(connection: ConnectionOptions, prefix: string): ResultsQueue {
  return createQueue<ResultMessage>(RESULTS_QUEUE, connection, prefix, RESULT_JOB_OPTIONS);
}

/** Posts a result; a second post for the same image is a no-op. */
export async function postResult(queue: ResultsQueue, message: ResultMessage): Promise<ResultJobHandle> {
  return queue.add(RESULT_JOB_NAME, message, { jobId: resultJobId(message.imageId) });
}
