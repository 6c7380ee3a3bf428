import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { assertSafeArtifactName, type ObjectStore } from '@btd/shared';
import type { DatasetSpec } from './dataset-spec.js';

/** Thrown when a request names a dataset the trainer may not or cannot read: bad input, not retried. */
export class InvalidDatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidDatasetError';
  }
}

/** What resolving a dataset needs. */
export interface DatasetResolver {
  store: ObjectStore;
  /** Where S3 datasets are mirrored. */
  cacheDir: string;
  /** Absolute folders under which local datasets may live; empty allows none. */
  allowedRoots: readonly string[];
}

const DOWNLOADS_IN_FLIGHT = 8;

function isInside(child: string, root: string): boolean {
  const relative = path.relative(root, child);
  // `..scans` is a folder inside the root; only `..` itself or `../...` leaves it.
  const leaves = relative === '..' || relative.startsWith(`..${path.sep}`);
  return relative === '' || (!leaves && !path.isAbsolute(relative));
}

async function resolveLocal(folder: string, allowedRoots: readonly string[] | null): Promise<string> {
  const absolute = path.resolve(folder);
  if (allowedRoots && !allowedRoots.some((root) => isInside(absolute, path.resolve(root)))) {
    throw new InvalidDatasetError(`dataset folder ${folder} is outside the allowed roots (TRAINER_DATASET_ROOTS)`);
  }
  const info = await stat(absolute).catch(() => null);
  if (!info?.isDirectory()) throw new InvalidDatasetError(`dataset folder ${folder} does not exist`);
  return absolute;
}

async function sameSize(file: string, size: number): Promise<boolean> {
  const info = await stat(file).catch(() => null);
  return info?.isFile() === true && info.size === size;
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
 * changed in size, and removing files that left the prefix. The mirror then goes through the
 * model package's folder loader, exactly like a local dataset.
 */
export async function mirrorPrefix(store: ObjectStore, prefix: string, cacheDir: string): Promise<string> {
  const dir = path.join(cacheDir, 's3', createHash('sha256').update(`${store.bucket}/${prefix}`).digest('hex').slice(0, 16));
  const objects = [];
  for await (const item of store.list(prefix)) if (!item.key.endsWith('/')) objects.push(item);
  if (objects.length === 0) throw new InvalidDatasetError(`no objects under s3://${store.bucket}/${prefix}`);
  await mkdir(dir, { recursive: true });
  const keep = new Set<string>();
  const queue = [...objects];
  const download = async (): Promise<void> => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      const relative = item.key.slice(prefix.length);
      try {
        assertSafeArtifactName(relative);
      } catch {
        throw new InvalidDatasetError(`object key ${item.key} cannot be mirrored safely`);
      }
      const target = path.join(dir, ...relative.split('/'));
      keep.add(target);
      if (await sameSize(target, item.size)) continue;
      await mkdir(path.dirname(target), { recursive: true });
      // Write then rename, so an interrupted download never leaves a truncated image behind.
      const partial = `${target}.${randomUUID()}.part`;
      await writeFile(partial, await store.get(item.key));
      await rename(partial, target);
    }
  };
  await Promise.all(Array.from({ length: DOWNLOADS_IN_FLIGHT }, download));
  await removeStale(dir, keep);
  return dir;
}

/** Turns a training request's dataset into a local folder with one sub-folder per class. */
export async function resolveTrainingDataset(spec: DatasetSpec, resolver: DatasetResolver): Promise<string> {
  if (spec.kind === 's3') return mirrorPrefix(resolver.store, spec.prefix, resolver.cacheDir);
  return resolveLocal(spec.path, resolver.allowedRoots);
}

/** Turns a configured evaluation set into a local folder; the operator chose it, so no root check. */
export async function resolveEvaluationSet(spec: DatasetSpec, resolver: DatasetResolver): Promise<string> {
  if (spec.kind === 's3') return mirrorPrefix(resolver.store, spec.prefix, resolver.cacheDir);
  return resolveLocal(spec.path, null);
}
