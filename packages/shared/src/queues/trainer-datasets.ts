import path from 'node:path';
import type { Redis } from 'ioredis';
import { TRAINING_QUEUE } from './training.queue.js';

/** A folder under which a trainer reads local datasets (`TRAINER_DATASET_ROOTS`), as the trainer sees it. */
export interface DatasetRoot {
  /** Absolute, on the trainer's machine. */
  path: string;
  /**
   * The folders under it, relative to it (`br35h`, `site-a/2026-11/br35h`, joined by `/`), sorted;
   * null when the root does not exist there. A root may hold thousands: the trainer publishes what
   * its bounds allow, level by level, and names in {@link unlisted} the folders whose sub-folders
   * are not all here.
   */
  folders: string[] | null;
  /**
   * The folders (as in {@link folders}; `''` is the root itself) whose sub-folders are not
   * published: too many, or too deep. A path through one of them can be neither confirmed nor
   * refused from the publication. Absent from publications of trainers that published only the
   * first level: each of their folders is unlisted then.
   */
  unlisted?: string[];
  /**
   * The folders (as in {@link folders}, and not among them) that a link leads out of every root of
   * the trainer: neither read nor listed, nor anything under them. Absent from publications of
   * trainers that did not tell them.
   */
  outside?: string[];
}

/**
 * What a running trainer can read as a local dataset, published in Redis under the queue prefix
 * while it runs, so that the API, which does not share its file system, can refuse a training it
 * could not read before queueing it, and a trainer that cannot read one can tell whether another could.
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
 * What a trainer's publication says of a dataset folder: `readable` (it is there), `unknown` (it
 * lies under a folder whose sub-folders are not published: only the trainer can tell), or
 * `unreadable` (outside its roots, under a missing root, missing from a folder whose sub-folders
 * are all published, or led out of its roots by a link), with, for a missing one, the deepest folder
 * there is and the name it lacks, and for one led out, the link.
 */
export type DatasetFolderAccess =
  | { access: 'readable' | 'unknown' }
  | { access: 'unreadable'; missing?: { parent: string; name: string; siblings: string[] }; outside?: string };

/** The relative folders directly inside `parent` (`''` is the root), by name. */
const foldersIn = (folders: readonly string[], parent: string): string[] =>
  folders.filter((folder) => path.posix.dirname(folder) === (parent === '' ? '.' : parent)).map((folder) => path.posix.basename(folder));

function accessUnder(root: DatasetRoot, absolute: string): DatasetFolderAccess {
  if (root.folders === null || !isInsideFolder(absolute, root.path)) return { access: 'unreadable' };
  const parts = path.relative(root.path, absolute).split(path.sep).filter(Boolean);
  const known = new Set(root.folders);
  const unlisted = new Set(root.unlisted ?? root.folders);
  const outside = new Set(root.outside);
  for (let depth = 0; depth < parts.length; depth++) {
    const parent = parts.slice(0, depth).join('/');
    if (unlisted.has(parent)) return { access: 'unknown' };
    if (outside.has(parts.slice(0, depth + 1).join('/'))) return { access: 'unreadable', outside: path.join(root.path, ...parts.slice(0, depth + 1)) };
    if (!known.has(parts.slice(0, depth + 1).join('/'))) {
      return { access: 'unreadable', missing: { parent: path.join(root.path, ...parts.slice(0, depth)), name: parts[depth]!, siblings: foldersIn(root.folders, parent) } };
    }
  }
  return { access: 'readable' };
}

/**
 * What a trainer's publication says of `folder` as a local dataset (a relative path read from its
 * working directory): the best of what each of its roots says.
 */
export function datasetFolderAccess(datasets: TrainerDatasets, folder: string): DatasetFolderAccess {
  const absolute = path.resolve(datasets.cwd, folder);
  const answers = datasets.roots.map((root) => accessUnder(root, absolute));
  // A missing folder, or a link leading out, is told from the root that holds its parent, for the refusal to name it.
  return (
    answers.find((answer) => answer.access === 'readable') ??
    answers.find((answer) => answer.access === 'unknown') ??
    answers.find((answer) => answer.access === 'unreadable' && (answer.missing !== undefined || answer.outside !== undefined)) ?? { access: 'unreadable' }
  );
}
