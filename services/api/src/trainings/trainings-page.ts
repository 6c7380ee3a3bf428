import { listRemovedTrainings, type Redis, type TrainingQueue } from '@btd/shared';
import { ApiError } from '../errors/api-error.js';

/** The states a training is listed in: every one a training job the queue keeps can be in. */
const LISTED_STATES = ['active', 'waiting', 'delayed', 'completed', 'failed'] as const;

/** One page of trainings, newest first: their ids, and the id to ask for the next page after while more follow. */
export interface TrainingsPage {
  ids: string[];
  last?: string;
}

/**
 * The ids of one page of the trainings the queue keeps (a month of them, at most the last 1000
 * completed and 1000 failed), and of those a cancellation took off the queue (kept a month), newest
 * first by creation, ties by id, after the training `after`. BullMQ keeps each state in its own
 * list, ordered by when a job entered it, so the order over all states is taken from each job's
 * creation time (its hash's `timestamp`), read for all in one round trip; a training taken off the
 * queue keeps its place by the creation time its record holds. A position in that order would
 * shift as trainings are added and removed, an id does not.
 */
export async function trainingsPage(queue: TrainingQueue, redis: Redis, prefix: string, limit: number, after?: string): Promise<TrainingsPage> {
  const ids = [...new Set(await queue.getRanges([...LISTED_STATES], 0, -1))];
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hget(queue.toKey(id), 'timestamp');
  const [created, removed] = await Promise.all([pipeline.exec().then((replies) => replies ?? []), listRemovedTrainings(redis, prefix)]);
  // A training removed since the listing has no timestamp left, and is left out, unless a cancellation took it off the queue.
  const queued = ids.map((id, i) => ({ id, createdAt: Number(created[i]?.[1] ?? Number.NaN) })).filter((training) => Number.isFinite(training.createdAt));
  // An id queued again since its cancellation (the same idempotency key) is listed once, as its job.
  const inQueue = new Set(queued.map((training) => training.id));
  const listed = [...queued, ...removed.filter((training) => !inQueue.has(training.id))]
    .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  let start = 0;
  if (after !== undefined) {
    const index = listed.findIndex((training) => training.id === after);
    if (index < 0) throw new ApiError(400, 'invalid_request', `querystring/after: no training ${after} is kept (trainings are kept for a month); start again from the first page`);
    start = index + 1;
  }
  const page = listed.slice(start, start + limit).map((training) => training.id);
  return { ids: page, ...(start + limit < listed.length ? { last: page.at(-1) } : {}) };
}
