import path from 'node:path';
import type { Redis } from 'ioredis';
import { TRAINING_QUEUE } from './training.queue.js';

/** A folder under which a trainer reads local datasets (`TRAINER_DATASET_ROOTS`), as the trainer sees it. */
export interface DatasetRoot {
  /** Absolute, on the trainer's machine. */
  path: string;
  /** The folders directly under it, sorted; null when the root does not exist there. */
  folders: string[] | null;
}

/**
 * What a running trainer can read as a local dataset, published in Redis under the queue prefix
 * while it runs, so that the API, which does not share its file system, can refuse a training it
 * could not read before queueing it.
 */
export interface TrainerDatasets {
  /** Names the trainer process (host, pid and a random part). */
  trainer: string;
  /** The trainer's working directory: a relative dataset path is read from there. */
  cwd: string;
  roots: DatasetRoot[];
}

/** The set of the trainers that published, each one's publication under its own key with a TTL. */
const trainersKey = (prefix: string): string => `${prefix}:${TRAINING_QUEUE}:trainers`;
const publicationKey = (prefix: string, trainer: string): string => `${trainersKey(prefix)}:${trainer}`;

/**
 * Publishes (or refreshes) what a trainer can read, for `ttlMs`: a trainer that stops refreshing it
 * (killed, or cut off from Redis) drops out once it expires.
 */
export async function publishTrainerDatasets(redis: Redis, prefix: string, datasets: TrainerDatasets, ttlMs: number): Promise<void> {
  await redis
    .multi()
    .set(publicationKey(prefix, datasets.trainer), JSON.stringify(datasets), 'PX', ttlMs)
    .sadd(trainersKey(prefix), datasets.trainer)
    .exec();
}

/** Removes a trainer's publication (at its shutdown). */
export async function withdrawTrainerDatasets(redis: Redis, prefix: string, trainer: string): Promise<void> {
  await redis.multi().del(publicationKey(prefix, trainer)).srem(trainersKey(prefix), trainer).exec();
}

/** The publications of the trainers running now (not expired); the ids of expired ones are removed from the set. */
export async function liveTrainerDatasets(redis: Redis, prefix: string): Promise<TrainerDatasets[]> {
  const trainers = await redis.smembers(trainersKey(prefix));
  if (trainers.length === 0) return [];
  const values = await redis.mget(trainers.map((trainer) => publicationKey(prefix, trainer)));
  const expired = trainers.filter((_, index) => values[index] === null);
  // A trainer that publishes again meanwhile adds itself back at its next refresh.
  if (expired.length > 0) await redis.srem(trainersKey(prefix), ...expired);
  return values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as TrainerDatasets);
}

/** Whether `child` is `root` or inside it (both absolute); `..scans` is a folder inside the root, `..` and `../x` leave it. */
export function isInsideFolder(child: string, root: string): boolean {
  const relative = path.relative(root, child);
  const leaves = relative === '..' || relative.startsWith(`..${path.sep}`);
  return relative === '' || (!leaves && !path.isAbsolute(relative));
}

/**
 * Whether a trainer could read `folder` as a local dataset: inside one of its roots (a relative
 * path read from its working directory), in a folder directly under that root that exists there.
 */
export function canReadDatasetFolder(datasets: TrainerDatasets, folder: string): boolean {
  const absolute = path.resolve(datasets.cwd, folder);
  return datasets.roots.some((root) => {
    if (root.folders === null || !isInsideFolder(absolute, root.path)) return false;
    const first = path.relative(root.path, absolute).split(path.sep)[0] ?? '';
    return first === '' || root.folders.includes(first);
  });
}
