import type { Redis } from 'ioredis';
import { TRAINING_QUEUE } from './training.queue.js';

/**
 * A request to cancel a training, kept in Redis under the queue prefix: the API writes it, the
 * trainer running the training reads it between epochs and at each phase, stops, and fails the job
 * with {@link cancelledReason}. Kept as long as a finished training (a month), so that the training
 * reads as cancelled, and a second request answers the same, for as long as it is kept.
 */
export interface TrainingCancellation {
  /** The API client that asked. */
  by: string;
  /** When, in milliseconds since the epoch. */
  at: number;
  /** The training as it stood when it was taken off the queue before any trainer ran it; absent while one runs it. */
  removed?: Record<string, unknown>;
}

/** How long a cancellation is kept: as long as the queue keeps a failed training. */
export const TRAINING_CANCELLATION_TTL_SECONDS = 30 * 24 * 3600;

const cancellationKey = (prefix: string, jobId: string): string => `${prefix}:${TRAINING_QUEUE}:cancel:${jobId}`;

/**
 * The trainings taken off the queue by a cancellation, scored by when: their jobs are gone, so the
 * list of trainings finds them here, and their records under {@link cancellationKey}.
 */
const removedKey = (prefix: string): string => `${prefix}:${TRAINING_QUEUE}:cancelled`;

/** The job's failure reason once a trainer stopped it on `cancellation`. */
export const cancelledReason = (cancellation: Pick<TrainingCancellation, 'by'>): string => `cancelled by ${cancellation.by}`;

/** The cancellation of the training, if one was asked for. */
export async function readTrainingCancellation(redis: Redis, prefix: string, jobId: string): Promise<TrainingCancellation | undefined> {
  const stored = await redis.get(cancellationKey(prefix, jobId));
  return stored === null ? undefined : (JSON.parse(stored) as TrainingCancellation);
}

/** Asks for the training to be cancelled by `by`; the first request stands, and is returned. */
export async function requestTrainingCancellation(redis: Redis, prefix: string, jobId: string, by: string): Promise<TrainingCancellation> {
  const request: TrainingCancellation = { by, at: Date.now() };
  const set = await redis.set(cancellationKey(prefix, jobId), JSON.stringify(request), 'EX', TRAINING_CANCELLATION_TTL_SECONDS, 'NX');
  return set === 'OK' ? request : ((await readTrainingCancellation(redis, prefix, jobId)) ?? request);
}

/** Records the training as it stood when it was taken off the queue, for it to read as cancelled once its job is gone. */
export async function recordRemovedTraining(redis: Redis, prefix: string, jobId: string, cancellation: TrainingCancellation, removed: Record<string, unknown>): Promise<void> {
  const now = Date.now();
  await redis
    .multi()
    .set(cancellationKey(prefix, jobId), JSON.stringify({ ...cancellation, removed }), 'EX', TRAINING_CANCELLATION_TTL_SECONDS)
    .zadd(removedKey(prefix), now, jobId)
    .zremrangebyscore(removedKey(prefix), '-inf', String(now - TRAINING_CANCELLATION_TTL_SECONDS * 1000))
    .exec();
}

/** A training taken off the queue by a cancellation, as the list of trainings orders it. */
export interface RemovedTraining {
  id: string;
  /** When the training was created, in milliseconds since the epoch. */
  createdAt: number;
}

/**
 * The trainings taken off the queue by a cancellation whose records are still kept (a month), in
 * no order; those whose records lapsed are forgotten.
 */
export async function listRemovedTrainings(redis: Redis, prefix: string): Promise<RemovedTraining[]> {
  const ids = await redis.zrange(removedKey(prefix), '0', '-1');
  if (ids.length === 0) return [];
  const records = await redis.mget(ids.map((id) => cancellationKey(prefix, id)));
  const listed: RemovedTraining[] = [];
  const lapsed: string[] = [];
  ids.forEach((id, i) => {
    const stored = records[i];
    const removed = stored ? (JSON.parse(stored) as TrainingCancellation).removed : undefined;
    const createdAt = typeof removed?.createdAt === 'string' ? Date.parse(removed.createdAt) : Number.NaN;
    if (Number.isFinite(createdAt)) listed.push({ id, createdAt });
    else if (!stored) lapsed.push(id);
  });
  if (lapsed.length > 0) await redis.zrem(removedKey(prefix), ...lapsed);
  return listed;
}
