import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { listLabeledImages, subsetListing, type DatasetListing } from '../data/dataset-folder.js';
import { loadPreprocessedDataset, type PreprocessedDataset } from '../data/preprocessed-dataset.js';
import { readSplitFile } from '../data/split-file.js';
import type { SplitAssignment } from '../data/split.js';
import { evaluateOnDataset } from '../eval/evaluate.js';
import { insideShape, readOutlines, type OutlineEntry, type Outlines } from '../eval/outlines.js';
import { renderReport } from '../eval/report.js';
import { modelFromArtifact, parseManifest, readArtifactDir, saveModelWeights, writeManifest } from '../model/artifact.js';
import { loadModel } from '../model/loaded-model.js';
import { buildLocator } from '../model/locator.js';
import { ARTIFACT_FILES, type ModelManifest } from '../model/manifest.js';
import { GradientWorkerPool } from './gradient-worker-pool.js';
import { adamFor, readWeights, runTrainingLoop, writeWeights, type EpochRecord } from './training-loop.js';

export interface LocatorOptions {
  /** Artifact folder of a trained classifier; the locator is added to it. */
  modelDir: string;
  /** The dataset the classifier was trained on (its split.json names the images). */
  dataDir: string;
  outlinesFile: string;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  workers?: number;
  cacheDir?: string;
  command?: string;
  onEpoch?: (e: EpochRecord & { epochs: number; isBest: boolean }) => void;
}

/** Share of each cell of a side × side grid over the model input that lies inside the outline (4×4 samples per cell). */
export function outlineTarget(entry: OutlineEntry, geometry: PreprocessedDataset['geometries'][number], side: number): Float32Array {
  const target = new Float32Array(side * side);
  const samples = 4;
  for (let cy = 0; cy < side; cy++) {
    for (let cx = 0; cx < side; cx++) {
      let inside = 0;
      for (let sy = 0; sy < samples; sy++) {
        for (let sx = 0; sx < samples; sx++) {
          const u = (cx + (sx + 0.5) / samples) / side;
          const v = (cy + (sy + 0.5) / samples) / side;
          const p = { x: geometry.squareX + u * geometry.squareSide, y: geometry.squareY + v * geometry.squareSide };
          if (entry.regions.some((r) => insideShape(r, p))) inside++;
        }
      }
      target[cy * side + cx] = inside / (samples * samples);
    }
  }
  const sum = target.reduce((a, b) => a + b, 0);
  return sum > 0 ? target.map((t) => t / sum) : target;
}

/**
 * Trains a locator on the outlined images of the classifier's own train and validation splits (never
 * its test split), writes it into the artifact and re-evaluates location on the test split.
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

  const backbone = await modelFromArtifact(files);
  const locator = buildLocator(backbone);
  const cells = locator.outputs[0]!.shape[1] as number;
  const side = Math.round(Math.sqrt(cells));
  const targets = new Float32Array(dataset.files.length * cells);
  dataset.files.forEach((f, i) => targets.set(outlineTarget(outlines[f.relPath]!, dataset.geometries[i]!, side), i * cells));
  const labels = Int32Array.from(dataset.files, (_, i) => {
    const row = targets.subarray(i * cells, (i + 1) * cells);
    return row.indexOf(Math.max(...row));
  });
  const train = dataset.files.flatMap((f, i) => (splitOf.get(f.relPath) === 'train' ? [i] : []));
  const val = dataset.files.flatMap((f, i) => (splitOf.get(f.relPath) === 'val' ? [i] : []));
  const pixels = new SharedArrayBuffer(dataset.pixels.byteLength);
  new Uint8Array(pixels).set(dataset.pixels);
  const sharedTargets = new SharedArrayBuffer(targets.byteLength);
  new Float32Array(sharedTargets).set(targets);
  const workers = Math.max(1, options.workers ?? availableParallelism());
  const pool = await GradientWorkerPool.start(workers, {
    type: 'init',
    topology: JSON.stringify(locator.toJSON(null, false)),
    pixels,
    labels,
    targets: sharedTargets,
    size: manifest.inputSize,
    numClasses: cells,
    classWeights: new Array<number>(cells).fill(1),
    labelSmoothing: 0,
    l2: manifest.architecture.l2,
    // Geometric changes would move the tumour away from its target cells: intensity changes only.
    augmentation: { flip: false, rotateDeg: 0, scale: 0, shift: 0, brightness: 0.08, contrast: 0.15 },
  });
  const epochs = options.epochs ?? 15;
  const learningRate = options.learningRate ?? 1e-3;
  const optimizer = adamFor(locator);
  let state;
  try {
    state = await runTrainingLoop(
      locator,
      optimizer,
      pool,
      { train, val, labels, numClasses: cells, targets },
      { epochs, batchSize: options.batchSize ?? 16, learningRate, patience: epochs, warmupEpochs: 1, seed: 1, onEpoch: (r, isBest) => options.onEpoch?.({ ...r, epochs, isBest }) },
      { epoch: 0, history: [], bestEpoch: 0, bestScore: [-1, -Infinity], bestWeights: readWeights(locator) },
    );
  } finally {
    await pool.close();
  }
  writeWeights(locator, state.bestWeights);
  await saveModelWeights(locator, options.modelDir, { topology: ARTIFACT_FILES.locatorTopology, weights: ARTIFACT_FILES.locatorWeights });
  locator.dispose();
  manifest.locator = {
    trainedOn: train.length,
    epochs: state.history.length,
    outlines: path.basename(options.outlinesFile),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    ...(options.command ? { command: options.command } : {}),
  };
  await reevaluateLocation(options, manifest, listing, outlines, split.assignments);
  return manifest;
}

async function reevaluateLocation(options: LocatorOptions, manifest: ModelManifest, listing: DatasetListing, outlines: Outlines, assignments: SplitAssignment[]): Promise<void> {
  const test = new Set(assignments.filter((a) => a.split === 'test').map((a) => a.relPath));
  const testSet = await loadPreprocessedDataset(subsetListing(listing, test), manifest.preprocessing, { cacheDir: options.cacheDir });
  const served = await loadModel(options.modelDir);
  try {
    const metrics = { ...(manifest.metrics ?? {}) };
    metrics.test = evaluateOnDataset(served, testSet, { outlines });
    manifest.metrics = metrics;
  } finally {
    served.dispose();
  }
  await writeManifest(options.modelDir, manifest);
  await writeFile(path.join(options.modelDir, 'metrics.json'), `${JSON.stringify(manifest.metrics, null, 2)}\n`);
  const history = JSON.parse(await readFile(path.join(options.modelDir, ARTIFACT_FILES.history), 'utf8')) as EpochRecord[];
  await renderReport(options.modelDir, manifest, history);
}
