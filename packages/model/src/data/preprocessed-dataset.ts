import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { forEachConcurrently } from '../util/concurrently.js';
import type { DatasetListing, LabeledFile } from './dataset-folder.js';
import { equaliseLocally, preprocessImage, withoutEqualisation, type InputGeometry, type PreprocessParams } from './preprocess.js';

/** Every image of a listing, preprocessed once; an epoch reads these pixels and never decodes a file. */
export interface PreprocessedDataset {
  params: PreprocessParams;
  files: LabeledFile[];
  /** files.length × size × size grey pixels. */
  pixels: Uint8Array;
  geometries: InputGeometry[];
  /** Files that could not be decoded, and those the listing refused to read (see DatasetListing.refused), with the reason. */
  rejected: { relPath: string; reason: string }[];
  /**
   * With contrast equalisation (params.clahe), the same images before it. Near-duplicate search
   * compares these, so that which images count as copies, and so every split, does not depend on
   * the preprocessing option a model was trained with. Absent otherwise: `pixels` serve.
   */
  matchPixels?: Uint8Array;
}

/** The size × size images at `indices` of a pixel array, in that order. */
export function imagesAt(pixels: Uint8Array, indices: readonly number[], size: number): Uint8Array {
  const area = size * size;
  const out = new Uint8Array(indices.length * area);
  indices.forEach((i, k) => out.set(pixels.subarray(i * area, (i + 1) * area), k * area));
  return out;
}

/** Two pixel arrays, one after the other. */
export function concatenate(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The pixels near-duplicate search compares (see PreprocessedDataset.matchPixels). */
export function matchingPixels(dataset: PreprocessedDataset): Uint8Array {
  return dataset.matchPixels ?? dataset.pixels;
}

interface CacheIndex {
  params: PreprocessParams;
  files: LabeledFile[];
  geometries: InputGeometry[];
  rejected: { relPath: string; reason: string }[];
}

export interface PreprocessOptions {
  cacheDir?: string;
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
  /** Stops the preprocessing, with the signal's reason, before its next image once aborted (nothing is cached then). */
  signal?: AbortSignal;
}

function cacheKey(listing: DatasetListing, params: PreprocessParams): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(params));
  // The label is part of the key: one folder read for two tasks gives two labellings. The change
  // time too: a file replaced by another of the same size keeps its modification time when copied
  // with it, and its cached pixels would be the old file's.
  for (const f of listing.files) {
    const frame = f.frame === undefined ? '' : `#${f.frame}`;
    hash.update(`${f.path}${frame}\0${f.label}\0${f.size}\0${Math.round(f.mtimeMs)}\0${Math.round(f.ctimeMs ?? 0)}\n`);
  }
  return hash.digest('hex').slice(0, 24);
}

/**
 * Preprocesses a listing, reading and writing a cache under cacheDir when given. With contrast
 * equalisation, the cached images are those without it, equalised on loading: the same steps in the
 * same order as preprocessImage, so training and serving still see identical pixels.
 */
export async function loadPreprocessedDataset(
  listing: DatasetListing,
  params: PreprocessParams,
  options: PreprocessOptions = {},
): Promise<PreprocessedDataset> {
  if (params.clahe) {
    const clahe = params.clahe;
    const plain = await loadPreprocessedDataset(listing, withoutEqualisation(params), options);
    const area = params.size * params.size;
    const pixels = new Uint8Array(plain.pixels.length);
    await forEachConcurrently(plain.files.length, options.concurrency ?? 8, async (i) => {
      options.signal?.throwIfAborted();
      pixels.set(await equaliseLocally(plain.pixels.subarray(i * area, (i + 1) * area), params.size, clahe), i * area);
    });
    return { ...plain, params, pixels, matchPixels: plain.pixels };
  }
  const key = cacheKey(listing, params);
  const cached = options.cacheDir ? await readCache(options.cacheDir, key) : undefined;
  if (cached) return withRefused(withListingFiles(cached, listing.files), listing);
  const dataset = await preprocessAll(listing.files, params, options);
  if (options.cacheDir) await writeCache(options.cacheDir, key, dataset);
  return withRefused(dataset, listing);
}

/** The dataset with the files its listing refused to read (links leading out) first among the rejected; the cache holds the decoding's only. */
function withRefused(dataset: PreprocessedDataset, listing: DatasetListing): PreprocessedDataset {
  return listing.refused ? { ...dataset, rejected: [...listing.refused, ...dataset.rejected] } : dataset;
}

async function preprocessAll(
  files: LabeledFile[],
  params: PreprocessParams,
  { concurrency = 8, onProgress, signal }: PreprocessOptions,
): Promise<PreprocessedDataset> {
  const results: ({ pixels: Uint8Array; geometry: InputGeometry } | { reason: string })[] = new Array(files.length);
  let done = 0;
  const read = fileReader(files);
  await forEachConcurrently(files.length, concurrency, async (index) => {
    signal?.throwIfAborted();
    const file = files[index] as LabeledFile;
    try {
      const out = await preprocessImage(await read(file), params, file.frame);
      results[index] = { pixels: out.pixels, geometry: out.geometry };
    } catch (error) {
      results[index] = { reason: (error as Error).message };
    }
    onProgress?.(++done, files.length);
  });
  const area = params.size * params.size;
  const kept: LabeledFile[] = [];
  const geometries: InputGeometry[] = [];
  const rejected: { relPath: string; reason: string }[] = [];
  const pixels = new Uint8Array(files.length * area);
  results.forEach((result, i) => {
    const file = files[i] as LabeledFile;
    if ('reason' in result) {
      rejected.push({ relPath: file.relPath, reason: result.reason });
      return;
    }
    pixels.set(result.pixels, kept.length * area);
    kept.push(file);
    geometries.push(result.geometry);
  });
  return { params, files: kept, pixels: pixels.slice(0, kept.length * area), geometries, rejected };
}

/**
 * Reads each file's bytes; a multi-frame file is read once for all its frames and let go after its
 * last frame's read.
 */
function fileReader(files: readonly LabeledFile[]): (file: LabeledFile) => Promise<Uint8Array> {
  const framesLeft = new Map<string, number>();
  for (const f of files) if (f.frame !== undefined) framesLeft.set(f.path, (framesLeft.get(f.path) ?? 0) + 1);
  const reading = new Map<string, Promise<Uint8Array>>();
  return (file) => {
    const left = framesLeft.get(file.path);
    if (left === undefined) return readFile(file.path);
    let bytes = reading.get(file.path);
    if (!bytes) reading.set(file.path, (bytes = readFile(file.path)));
    if (left <= 1) reading.delete(file.path);
    framesLeft.set(file.path, left - 1);
    return bytes;
  };
}

async function readCache(cacheDir: string, key: string): Promise<PreprocessedDataset | undefined> {
  try {
    const index = JSON.parse(await readFile(path.join(cacheDir, `${key}.json`), 'utf8')) as CacheIndex;
    const buffer = await readFile(path.join(cacheDir, `${key}.pixels`));
    const pixels = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    if (pixels.length !== index.files.length * index.params.size * index.params.size) return undefined;
    return { ...index, pixels };
  } catch {
    return undefined;
  }
}

/**
 * A cached dataset with the listing's own records of its files. The cache key covers what the
 * pixels depend on, not whose scan each file is: that comes from the listing (a patients file
 * given this time, or none), never from the run that wrote the cache.
 */
function withListingFiles(cached: PreprocessedDataset, files: readonly LabeledFile[]): PreprocessedDataset {
  const byPath = new Map(files.map((f) => [f.relPath, f]));
  return { ...cached, files: cached.files.map((f) => byPath.get(f.relPath) ?? f) };
}

async function writeCache(cacheDir: string, key: string, dataset: PreprocessedDataset): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  const index: CacheIndex = {
    params: dataset.params,
    // No patient or study identifiers in the cache: they are the listing's to give.
    files: dataset.files.map(({ patient: _patient, study: _study, ...file }) => file),
    geometries: dataset.geometries,
    rejected: dataset.rejected,
  };
  // Write then rename, so a crash never leaves a cache entry that looks complete.
  const base = path.join(cacheDir, key);
  await writeFile(`${base}.pixels.tmp`, dataset.pixels);
  await rename(`${base}.pixels.tmp`, `${base}.pixels`);
  await writeFile(`${base}.json.tmp`, JSON.stringify(index));
  await rename(`${base}.json.tmp`, `${base}.json`);
}
