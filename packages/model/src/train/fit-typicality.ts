import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { listLabeledImages, subsetListing } from '../data/dataset-folder.js';
import { imagesAt, loadPreprocessedDataset, type PreprocessedDataset } from '../data/preprocessed-dataset.js';
import { readSplitFile } from '../data/split-file.js';
import { parseManifest, readArtifactDir, writeManifest } from '../model/artifact.js';
import type { ForwardPass } from '../model/forward-pass.js';
import { loadModel } from '../model/loaded-model.js';
import { ARTIFACT_FILES, type ModelManifest } from '../model/manifest.js';
import { fitTypicality, typicalityDistance, typicalityLimit, type TypicalityStats } from '../model/typicality.js';
import { newVersion } from './write-artifact.js';

export interface TypicalityOptions {
  /** An artifact folder with its split.json. */
  modelDir: string;
  /** The dataset its split names. */
  dataDir: string;
  /** Quantile of the training images' distances that, times `margin`, sets the limit; default 0.999. */
  quantile?: number;
  /** Default 1.1. */
  margin?: number;
  /** Share of the mean variance added to each variance; default 0.001. */
  ridge?: number;
  cacheDir?: string;
  command?: string;
  version?: string;
}

const BATCH = 32;

/**
 * Fits the statistics with which the model refuses images unlike its training scans (see
 * `model/typicality.ts`) on its split's training images and their mirrors, sets the limit from
 * their distances, measures how many of the split's test images (or, without any, its validation
 * images) the limit refuses, and writes
 * `typicality.json` and the manifest, in place, as a new version. Probabilities do not change.
 */
export async function fitArtifactTypicality(options: TypicalityOptions): Promise<ModelManifest> {
  const quantile = options.quantile ?? 0.999;
  const margin = options.margin ?? 1.1;
  const ridge = options.ridge ?? 1e-3;
  if (!(quantile > 0 && quantile <= 1)) throw new Error(`--quantile ${quantile}: a share above 0, at most 1`);
  if (!(margin >= 1)) throw new Error(`--margin ${margin}: a factor of at least 1`);
  await initBackend();
  const files = await readArtifactDir(options.modelDir);
  const manifest = parseManifest(files);
  if (!files[ARTIFACT_FILES.split]) throw new Error(`${options.modelDir} has no ${ARTIFACT_FILES.split}: its training images are unknown`);
  const split = await readSplitFile(path.join(options.modelDir, ARTIFACT_FILES.split));
  const listing = await listLabeledImages(options.dataDir, manifest.task);
  const load = async (name: string): Promise<PreprocessedDataset | undefined> => {
    const names = new Set(split.assignments.filter((a) => a.split === name).map((a) => a.relPath));
    if (names.size === 0) return undefined;
    const dataset = await loadPreprocessedDataset(subsetListing(listing, names), manifest.preprocessing, { cacheDir: options.cacheDir });
    if (dataset.files.length < names.size) throw new Error(`${options.dataDir} holds ${dataset.files.length} of the ${names.size} ${name} images ${ARTIFACT_FILES.split} names: is it the dataset the model was trained on?`);
    return dataset;
  };
  const train = await load('train');
  if (!train) throw new Error(`${ARTIFACT_FILES.split} names no training images`);
  const model = await loadModel(files);
  try {
    const trainViews = viewVectors(model.forwardPass, train);
    const stats = fitTypicality(trainViews.flat(), ridge);
    const limit = typicalityLimit(trainViews.map((views) => meanDistance(stats, views)), quantile, margin);
    const set = split.assignments.some((a) => a.split === 'test') ? 'test' : 'val';
    const held = await load(set);
    const heldOut = held ? { set, images: held.files.length, refused: viewVectors(model.forwardPass, held).filter((views) => meanDistance(stats, views) > limit).length } : undefined;
    await writeFile(path.join(options.modelDir, ARTIFACT_FILES.typicality), JSON.stringify(stats));
    const previous = manifest.version;
    manifest.version = options.version ?? newVersion();
    manifest.createdAt = new Date().toISOString();
    manifest.typicality = {
      limit,
      fittedOn: { dir: options.dataDir, images: train.files.length, quantile, margin, ridge },
      ...(heldOut ? { heldOut } : {}),
      ...(options.command ? { command: `${options.command} (on version ${previous})` } : {}),
    };
    await writeManifest(options.modelDir, manifest);
    return manifest;
  } finally {
    model.dispose();
  }
}

/** Per image of the dataset, the pooled feature vector of each of its views (the image, its mirror). */
function viewVectors(forward: ForwardPass, dataset: PreprocessedDataset): Float32Array[][] {
  const size = dataset.params.size;
  const out: Float32Array[][] = [];
  for (let start = 0; start < dataset.files.length; start += BATCH) {
    const indices = Array.from({ length: Math.min(BATCH, dataset.files.length - start) }, (_, k) => start + k);
    const vectors = forward.featureVectors(imagesAt(dataset.pixels, indices, size), indices.length);
    const perImage = vectors.length / indices.length;
    const channels = perImage / forward.viewCount;
    for (let i = 0; i < indices.length; i++) {
      out.push(Array.from({ length: forward.viewCount }, (_, v) => vectors.slice(i * perImage + v * channels, i * perImage + (v + 1) * channels)));
    }
  }
  return out;
}

/** An image's distance as served: the mean over its views. */
function meanDistance(stats: TypicalityStats, views: readonly Float32Array[]): number {
  return views.reduce((sum, vector) => sum + typicalityDistance(stats, vector), 0) / views.length;
}
