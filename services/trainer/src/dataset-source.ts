import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { assertSafeArtifactName, isFolderMarker, isInsideFolder, type ListedObject, type ObjectStore } from '@btd/shared';
import { confinementOf } from './dataset-confinement.js';
import type { DatasetSpec } from './dataset-spec.js';

/** Thrown when a request names a dataset the trainer may not or cannot read: bad input, not retried. */
export class InvalidDatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidDatasetError';
  }
}

/**
 * Thrown when this trainer cannot read a training's local dataset folder (outside its roots, or not
 * there): another trainer, with other roots or another disk, may read it.
 */
export class DatasetFolderUnreadableError extends InvalidDatasetError {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetFolderUnreadableError';
  }
}

/** What resolving a dataset needs. */
export interface DatasetResolver {
  store: ObjectStore;
  /** Where S3 datasets are mirrored. */
  cacheDir: string;
  /** Absolute folders under which local datasets may live; empty allows none. */
  allowedRoots: readonly string[];
  /** Aborted when the trainer shuts down: a mirror stops before its next download. */
  signal?: AbortSignal;
}

/** The folders of `TRAINER_DATASET_ROOTS` (comma-separated), as written. */
export function datasetRootsOf(setting: string): string[] {
  return setting.split(',').map((root) => root.trim()).filter(Boolean);
}

/** The resolver of a trainer: S3 datasets mirrored under `<workDir>/datasets`, local ones from the comma-separated roots. */
export function createDatasetResolver(store: ObjectStore, config: { workDir: string; datasetRoots: string }, signal?: AbortSignal): DatasetResolver {
  return {
    store,
    cacheDir: path.resolve(config.workDir, 'datasets'),
    allowedRoots: datasetRootsOf(config.datasetRoots),
    ...(signal ? { signal } : {}),
  };
}

const DOWNLOADS_IN_FLIGHT = 8;

/** The refusal of an S3 prefix that holds no file (folder markers do not count). */
const emptyPrefix = (store: ObjectStore, prefix: string): InvalidDatasetError => new InvalidDatasetError(`no objects under s3://${store.bucket}/${prefix}`);

async function resolveLocal(folder: string, allowedRoots: readonly string[] | null): Promise<string> {
  const absolute = path.resolve(folder);
  if (allowedRoots && !allowedRoots.some((root) => isInsideFolder(absolute, path.resolve(root)))) {
    const roots = allowedRoots.map((root) => path.resolve(root)).join(', ');
    throw new DatasetFolderUnreadableError(`dataset folder ${folder} is outside the allowed roots (TRAINER_DATASET_ROOTS: ${roots || 'none'})`);
  }
  const info = await stat(absolute).catch(() => null);
  if (!info?.isDirectory()) throw new DatasetFolderUnreadableError(`dataset folder ${folder} does not exist`);
  // A link under a root (to /etc, another disk) may lead the folder out of every root.
  const confinement = allowedRoots && confinementOf(allowedRoots);
  if (confinement && !(await confinement.allows(await realpath(absolute)))) {
    throw new DatasetFolderUnreadableError(`dataset folder ${folder} is a link, or lies under one, that leads outside the allowed roots (${confinement.description})`);
  }
  return absolute;
}

/** The ETags of a mirror's files when they were downloaded, kept beside the mirror (never inside, where the loader reads). */
const etagRecordOf = (dir: string): string => `${dir}.etags.json`;

async function readEtags(file: string): Promise<Map<string, string>> {
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return new Map();
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return new Map();
    return new Map(Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  } catch {
    // A damaged record only costs downloads: every file is fetched again.
    return new Map();
  }
}

/** Writes `file` through a `.part` file renamed over it, so that an interruption never leaves it truncated. */
async function writeWhole(file: string, data: string | Uint8Array): Promise<void> {
  const partial = `${file}.${randomUUID()}.part`;
  await writeFile(partial, data);
  await rename(partial, file);
}

/** Whether the mirrored file still holds the object's bytes: same size and, when the store gives one, the ETag it was downloaded with. */
async function isCurrent(file: string, item: ListedObject, downloadedEtag: string | undefined): Promise<boolean> {
  const info = await stat(file).catch(() => null);
  if (info?.isFile() !== true || info.size !== item.size) return false;
  return item.etag === undefined || item.etag === downloadedEtag;
}

async function removeStale(dir: string, keep: Set<string>): Promise<void> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    const full = path.join(entry.parentPath, entry.name);
    // `.part` files may belong to a concurrent mirror of the same prefix.
    if (entry.isFile() && !keep.has(full) && !entry.name.endsWith('.part')) await rm(full, { force: true });
  }
}

/**
 * Mirrors every object under an S3 prefix into the cache, downloading only what is missing or
 * changed (in size or ETag: an object replaced by other bytes of the same size is downloaded
 * again), and removing files that left the prefix. The mirror then goes through the model
 * package's folder loader, exactly like a local dataset. An aborted `signal` cancels the downloads
 * in flight and starts no other (what is downloaded stays for the next mirror).
 */
export async function mirrorPrefix(store: ObjectStore, prefix: string, cacheDir: string, signal?: AbortSignal): Promise<string> {
  const dir = path.join(cacheDir, 's3', createHash('sha256').update(`${store.bucket}/${prefix}`).digest('hex').slice(0, 16));
  const objects = [];
  for await (const item of store.list(prefix)) if (!isFolderMarker(item.key)) objects.push(item);
  if (objects.length === 0) throw emptyPrefix(store, prefix);
  await mkdir(dir, { recursive: true });
  const recorded = await readEtags(etagRecordOf(dir));
  const etags = new Map<string, string>();
  const keep = new Set<string>();
  const queue = [...objects];
  const download = async (): Promise<void> => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      signal?.throwIfAborted();
      const relative = item.key.slice(prefix.length);
      try {
        assertSafeArtifactName(relative);
      } catch {
        throw new InvalidDatasetError(`object key ${item.key} cannot be mirrored safely`);
      }
      const target = path.join(dir, ...relative.split('/'));
      keep.add(target);
      if (!(await isCurrent(target, item, recorded.get(relative)))) {
        await mkdir(path.dirname(target), { recursive: true });
        await writeWhole(target, await store.get(item.key, signal ? { signal } : {}));
      }
      if (item.etag !== undefined) etags.set(relative, item.etag);
    }
  };
  await Promise.all(Array.from({ length: DOWNLOADS_IN_FLIGHT }, download));
  // Written once every file is in place: a file whose download was cut short has no ETag recorded and is fetched again.
  await writeWhole(etagRecordOf(dir), JSON.stringify(Object.fromEntries(etags)));
  await removeStale(dir, keep);
  return dir;
}

/** Turns a training request's dataset into a local folder with one sub-folder per class. */
export async function resolveTrainingDataset(spec: DatasetSpec, resolver: DatasetResolver): Promise<string> {
  if (spec.kind === 's3') return mirrorPrefix(resolver.store, spec.prefix, resolver.cacheDir, resolver.signal);
  return resolveLocal(spec.path, resolver.allowedRoots);
}

/** Checks, without downloading it, that a configured evaluation set is there: the folder exists, or the prefix holds files (not only folder markers). */
export async function checkEvaluationSet(spec: DatasetSpec, resolver: DatasetResolver): Promise<void> {
  if (spec.kind === 'local') {
    await resolveLocal(spec.path, null);
    return;
  }
  // Folder markers alone are no set: the mirror skips them and would find nothing to evaluate on.
  if (!(await resolver.store.hasFilesUnder(spec.prefix))) throw emptyPrefix(resolver.store, spec.prefix);
}

/** Turns a configured evaluation set into a local folder; the operator chose it, so no root check. */
export async function resolveEvaluationSet(spec: DatasetSpec, resolver: DatasetResolver): Promise<string> {
  if (spec.kind === 's3') return mirrorPrefix(resolver.store, spec.prefix, resolver.cacheDir, resolver.signal);
  return resolveLocal(spec.path, null);
}
