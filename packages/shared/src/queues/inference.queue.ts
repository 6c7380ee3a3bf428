import { Type, type Static } from '@sinclair/typebox';
import type { ConnectionOptions, DefaultJobOptions, Job, Queue } from 'bullmq';
import { KEEP_COMPLETED, KEEP_FAILED, createQueue, deterministicJobId, exponentialBackoff } from './queue-options.js';

/** Name of the queue the API fills and the inference workers drain. */
export const INFERENCE_QUEUE = 'inference';

/** Job name used for every inference job. */
export const INFERENCE_JOB_NAME = 'infer';

const Id = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_.-]+$' });

/** Payload of an inference job: ids and the object key of the original image, never its bytes. */
export const InferenceJobSchema = Type.Object(
  {
    studyId: Id,
    imageId: Id,
    /** Key of the original image in the bucket (see `originalKey`). */
    objectKey: Type.String({ minLength: 1, maxLength: 1024 }),
    /** For one frame of a multi-frame DICOM original, which (0-based); the images of its frames share the original. */
    frame: Type.Optional(Type.Integer({ minimum: 0, maximum: 65_535 })),
    clientId: Id,
  },
  { additionalProperties: false },
);

/** Payload of an inference job. */
export type InferenceJob = Static<typeof InferenceJobSchema>;

/** Study priority as the API accepts it. */
export const StudyPrioritySchema = Type.Union([Type.Literal('stat'), Type.Literal('routine')]);

/** `stat` (urgent) or `routine`. */
export type StudyPriority = Static<typeof StudyPrioritySchema>;

/**
 * BullMQ priorities: lower runs first, and 0 (no priority) would jump ahead of every
 * prioritised job, so both levels are explicit and positive.
 */
export const INFERENCE_PRIORITY: Readonly<Record<StudyPriority, number>> = Object.freeze({ stat: 1, routine: 10 });

/**
 * Five attempts over roughly 1 + 2 + 4 + 8 s cover a restarting Redis or a passing fault; bad input
 * fails at once through `UnrecoverableError` instead. An S3 outage spends none of them: the worker
 * puts the job back until S3 answers, within an outage budget of its own.
 */
export const INFERENCE_JOB_OPTIONS: DefaultJobOptions = Object.freeze({
  attempts: 5,
  backoff: exponentialBackoff(1000),
  removeOnComplete: KEEP_COMPLETED,
  removeOnFail: KEEP_FAILED,
});

/** The job id of an image's inference job: one job per image, however often it is enqueued. */
export function inferenceJobId(imageId: string): string {
  return deterministicJobId('inference', imageId);
}

/** Queue of inference jobs. */
export type InferenceQueue = Queue<InferenceJob>;

/** A job taken from the inference queue. */
export type InferenceJobHandle = Job<InferenceJob>;

/** Creates the inference queue (producer side). */
export function createInferenceQueue(connection: ConnectionOptions, prefix: string): InferenceQueue {
  return createQueue<InferenceJob>(INFERENCE_QUEUE, connection, prefix, INFERENCE_JOB_OPTIONS);
}

/**
 * Enqueues inference of one image. Idempotent: the job id is derived from the image id, so a
 * repeated call while the job exists (queued, running or kept after completion) adds nothing.
 */
export async function enqueueInference(
  queue: InferenceQueue,
  payload: InferenceJob,
  priority: StudyPriority,
): Promise<InferenceJobHandle> {
  return queue.add(INFERENCE_JOB_NAME, payload, {
    jobId: inferenceJobId(payload.imageId),
    priority: INFERENCE_PRIORITY[priority],
  });
}

/** Bulk form of {@link enqueueInference}, one Redis round trip for a whole study or batch. */
export async function enqueueInferenceBulk(
  queue: InferenceQueue,
  items: readonly { payload: InferenceJob; priority: StudyPriority }[],
): Promise<InferenceJobHandle[]> {
  return queue.addBulk(
    items.map(({ payload, priority }) => ({
      name: INFERENCE_JOB_NAME,
      data: payload,
      opts: { jobId: inferenceJobId(payload.imageId), priority: INFERENCE_PRIORITY[priority] },
    })),
  );
}
