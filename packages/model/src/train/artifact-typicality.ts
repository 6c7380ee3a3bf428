import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { listLabeledImages, subsetListing } from '../data/dataset-folder.js';
import { loadPreprocessedDataset, type PreprocessedDataset } from '../data/preprocessed-dataset.js';
import { readSplitFile, splitNames } from '../data/split-file.js';
import { parseManifest, readArtifactDir, writeManifest } from '../model/artifact.js';
import { loadModel } from '../model/loaded-model.js';
import { ARTIFACT_FILES, type ModelManifest } from '../model/manifest.js';
import { fitTypicalityOn, TYPICALITY_DEFAULTS, writeTypicality, type FittedTypicality } from './typicality-fit.js';
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

/**
 * Fits the statistics with which the model refuses images unlike its training scans (see
 * `model/typicality.ts`) on its split's training images and their mirrors, sets the limit from
 * their distances, measures how many of the split's test images (or, without any, its validation
 * images) the limit refuses, and writes
 * `typicality.json` and the manifest, in place, as a new version. Probabilities do not change.
 */
export async function fitArtifactTypicality(options: TypicalityOptions): Promise<ModelManifest> {
  const quantile = options.quantile ?? TYPICALITY_DEFAULTS.quantile;
  const margin = options.margin ?? TYPICALITY_DEFAULTS.margin;
  const ridge = options.ridge ?? TYPICALITY_DEFAULTS.ridge;
  if (!(quantile > 0 && quantile <= 1)) throw new Error(`--quantile ${quantile}: a share above 0, at most 1`);
  if (!(margin >= 1)) throw new Error(`--margin ${margin}: a factor of at least 1`);
  await initBackend();
  const files = await readArtifactDir(options.modelDir);
  const manifest = parseManifest(files);
  if (!files[ARTIFACT_FILES.split]) throw new Error(`${options.modelDir} has no ${ARTIFACT_FILES.split}: its training images are unknown`);
  const split = await readSplitFile(path.join(options.modelDir, ARTIFACT_FILES.split));
  const listing = await listLabeledImages(options.dataDir, manifest.task);
  const load = async (name: string): Promise<PreprocessedDataset | undefined> => {
    const names = splitNames(split, name);
    if (names.size === 0) return undefined;
    const dataset = await loadPreprocessedDataset(subsetListing(listing, names), manifest.preprocessing, { cacheDir: options.cacheDir });
    if (dataset.files.length < names.size) throw new Error(`${options.dataDir} holds ${dataset.files.length} of the ${names.size} ${name} images ${ARTIFACT_FILES.split} names: is it the dataset the model was trained on?`);
    return dataset;
  };
  const train = await load('train');
  if (!train) throw new Error(`${ARTIFACT_FILES.split} names no training images`);
  const set = split.assignments.some((a) => a.split === 'test') ? 'test' : 'val';
  const held = await load(set);
  const model = await loadModel(files);
  let fitted: FittedTypicality;
  try {
    const all = (dataset: PreprocessedDataset) => ({ pixels: dataset.pixels, indices: dataset.files.map((_, i) => i) });
    fitted = fitTypicalityOn(model.forwardPass, all(train), held ? { set, ...all(held) } : undefined, { quantile, margin, ridge });
  } finally {
    model.dispose();
  }
  const previous = manifest.version;
  manifest.version = options.version ?? newVersion();
  manifest.createdAt = new Date().toISOString();
  await writeTypicality(options.modelDir, manifest, fitted, options.dataDir, options.command ? `${options.command} (on version ${previous})` : undefined);
  await writeManifest(options.modelDir, manifest);
  return manifest;
}

