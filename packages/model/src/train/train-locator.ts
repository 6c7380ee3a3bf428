import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { listLabeledImages, subsetListing, type DatasetListing } from '../data/dataset-folder.js';
import { withRecordedPatients } from '../data/patients-file.js';
import { inputBatch } from '../data/model-input.js';
import { loadPreprocessedDataset, type PreprocessedDataset } from '../data/preprocessed-dataset.js';
import type { InputGeometry } from '../data/preprocess.js';
import { readSplitFile } from '../data/split-file.js';
import type { SplitAssignment } from '../data/split.js';
import { evaluateOnDataset } from '../eval/evaluate.js';
import { outlineCoverage, readOutlines, type OutlineEntry, type Outlines } from '../eval/outlines.js';
import { renderReport } from '../eval/report.js';
import { modelFromArtifact, parseManifest, readArtifactDir, saveModelWeights, writeManifestAndMetrics } from '../model/artifact.js';
import { loadModel } from '../model/loaded-model.js';
import { CAM_LAYER } from '../model/architecture.js';
import { buildLocatorHead, featureShape } from '../model/locator.js';
import { ARTIFACT_FILES, type ModelManifest } from '../model/manifest.js';
import { mirrorViews } from '../model/test-time-views.js';
import { fitLocatorHead, type LocatorExamples } from './fit-locator-head.js';
import type { EpochRecord } from './training-loop.js';
import { newVersion } from './write-artifact.js';

export interface LocatorOptions {
  /** Artifact folder of a trained classifier; the locator is added to it. */
  modelDir: string;
  /** The dataset the classifier was trained on (its split.json names the images). */
  dataDir: string;
  outlinesFile: string;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  cacheDir?: string;
  command?: string;
  onEpoch?: (e: EpochRecord & { epochs: number; isBest: boolean }) => void;
}

/** Share of each cell of a side × side grid over the model input inside the outline (4×4 samples per cell), summing to one. */
export function outlineTarget(entry: OutlineEntry, geometry: InputGeometry, side: number): Float32Array {
  const target = outlineCoverage(entry, geometry, side, 4);
  const sum = target.reduce((a, b) => a + b, 0);
  return sum > 0 ? target.map((t) => t / sum) : target;
}

/**
 * The classifier's last-block features of some images and of their mirrors (the order of `indices`,
 * then the mirrors), with the outline targets mirrored alike.
 */
function locatorExamples(classifier: tf.LayersModel, dataset: PreprocessedDataset, outlines: Outlines, indices: readonly number[]): LocatorExamples | undefined {
  if (indices.length === 0) return undefined;
  const size = dataset.params.size;
  const [side] = featureShape(classifier);
  const features = tf.model({ inputs: classifier.inputs, outputs: classifier.getLayer(CAM_LAYER).output as tf.SymbolicTensor });
  const targets = new Float32Array(indices.length * side * side);
  indices.forEach((index, i) => targets.set(outlineTarget(outlines[dataset.files[index]!.relPath]!, dataset.geometries[index]!, side), i * side * side));
  return tf.tidy(() => {
    const x = tf.tensor4d(inputBatch(dataset.pixels, indices, size), [indices.length, size, size, 1]);
    const t = tf.tensor3d(targets, [indices.length, side, side]);
    const both = mirrorViews(x, true);
    const computed: tf.Tensor4D[] = [];
    for (let start = 0; start < both.shape[0]; start += 64) computed.push(features.predict(both.slice(start, Math.min(64, both.shape[0] - start))) as tf.Tensor4D);
    return { features: tf.concat(computed), targets: tf.concat([t, tf.reverse(t, 2)]).reshape([-1, side * side]) as tf.Tensor2D };
  });
}

/**
 * Trains a locator head on the features of the classifier (frozen) for the outlined images of its
 * own train and validation splits (never its test split), writes it into the artifact as a new
 * version and re-evaluates location on the test split.
 */
export async function trainLocator(options: LocatorOptions): Promise<ModelManifest> {
  const started = Date.now();
  await initBackend();
  const files = await readArtifactDir(options.modelDir);
  const manifest = parseManifest(files);
  const split = await readSplitFile(path.join(options.modelDir, ARTIFACT_FILES.split));
  const outlines: Outlines = await readOutlines(options.outlinesFile);
  const outlined = (s: SplitAssignment) => (outlines[s.relPath]?.regions.length ?? 0) > 0;
  const pick = (names: string[]) => new Set(split.assignments.filter((a) => names.includes(a.split) && outlined(a)).map((a) => a.relPath));
  const listing = await listLabeledImages(options.dataDir, manifest.task);
  const dataset = await loadPreprocessedDataset(subsetListing(listing, pick(['train', 'val'])), manifest.preprocessing, { cacheDir: options.cacheDir });
  const splitOf = new Map(split.assignments.map((a) => [a.relPath, a.split]));
  const inSplit = (name: string) => dataset.files.flatMap((f, i) => (splitOf.get(f.relPath) === name ? [i] : []));

  // The first classifier of an ensemble (model.json) carries the head.
  const classifier = await modelFromArtifact(files);
  const seed = options.seed ?? 1;
  const head = buildLocatorHead(classifier, seed);
  const trainImages = inSplit('train');
  const train = locatorExamples(classifier, dataset, outlines, trainImages);
  const val = locatorExamples(classifier, dataset, outlines, inSplit('val'));
  classifier.dispose();
  if (!train) {
    head.dispose();
    throw new Error(`no image of the training split of ${options.modelDir} has an outline in ${options.outlinesFile}`);
  }
  const epochs = options.epochs ?? 40;
  let history: EpochRecord[];
  try {
    history = fitLocatorHead(head, train, val, {
      epochs,
      batchSize: options.batchSize ?? 64,
      learningRate: options.learningRate ?? 3e-3,
      seed,
      onEpoch: (r, isBest) => options.onEpoch?.({ ...r, epochs, isBest }),
    });
    await saveModelWeights(head, options.modelDir, { topology: ARTIFACT_FILES.locatorTopology, weights: ARTIFACT_FILES.locatorWeights });
  } finally {
    tf.dispose([train.features, train.targets, ...(val ? [val.features, val.targets] : [])]);
    head.dispose();
  }
  manifest.locator = {
    kind: 'head',
    trainedOn: trainImages.length,
    epochs: history.length,
    outlines: path.basename(options.outlinesFile),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    ...(options.command ? { command: options.command } : {}),
  };
  manifest.version = newVersion();
  manifest.createdAt = new Date().toISOString();
  await reevaluateLocation(options, manifest, listing, outlines, split.assignments);
  return manifest;
}

async function reevaluateLocation(options: LocatorOptions, manifest: ModelManifest, listing: DatasetListing, outlines: Outlines, assignments: SplitAssignment[]): Promise<void> {
  const test = new Set(assignments.filter((a) => a.split === 'test').map((a) => a.relPath));
  const files = await withRecordedPatients(listing.files, options.dataDir, manifest.split?.patients?.file);
  const testSet = await loadPreprocessedDataset(subsetListing({ ...listing, files }, test), manifest.preprocessing, { cacheDir: options.cacheDir });
  const served = await loadModel(options.modelDir);
  try {
    const metrics = { ...(manifest.metrics ?? {}) };
    metrics.test = evaluateOnDataset(served, testSet, { outlines });
    manifest.metrics = metrics;
  } finally {
    served.dispose();
  }
  await writeManifestAndMetrics(options.modelDir, manifest);
  const history = JSON.parse(await readFile(path.join(options.modelDir, ARTIFACT_FILES.history), 'utf8')) as EpochRecord[];
  await renderReport(options.modelDir, manifest, history);
}
