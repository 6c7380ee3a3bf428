import type * as tf from '@tensorflow/tfjs';
import { performance } from 'node:perf_hooks';
import { preprocessImage, type PreprocessedImage, type PreprocessParams } from '../data/preprocess.js';
import { modelFromArtifact, parseManifest, readArtifactDir, type ArtifactFiles } from './artifact.js';
import { ARTIFACT_FILES } from './manifest.js';
import { ForwardPass } from './forward-pass.js';
import { boxFromHeatmap, camToHeatmap, heatmapPeak, type Box, type Heatmap, type Point } from './heatmap.js';
import type { ModelManifest } from './manifest.js';
import { readTypicalityStats } from './typicality.js';
import { unsupportedImage } from '../data/image-decode-error.js';

export interface Prediction {
  label: string;
  probabilities: Record<string, number>;
  /** Box around the most suspicious region in original pixels; null when the label is no_tumor. */
  box: Box | null;
  /** Hottest point of the heatmap in original pixels (present with a heatmap). */
  peak?: Point;
  heatmap?: Heatmap;
  /** The image's distance to the training scans and the limit above which it is refused (models that measure it). */
  typicality?: { distance: number; limit: number };
  timings: { preprocessMs: number; modelMs: number; heatmapMs: number };
}

export interface PredictOptions {
  /** Compute the heatmap (and the box); default true. */
  heatmap?: boolean;
  /** The frame of a multi-frame DICOM image to analyse, 0-based; default the first. */
  frame?: number;
  /**
   * Refuse an image unlike the training scans (its distance to them above the manifest's limit);
   * default true. The probe check turns it off: its synthetic image is unlike any scan.
   */
  refuseAtypical?: boolean;
}

/** A model ready to serve: its manifest, a predict function and an idempotent dispose. */
export interface LoadedModel {
  readonly manifest: ModelManifest;
  predict(image: Uint8Array, options?: PredictOptions): Promise<Prediction>;
  dispose(): void;
}

const NO_TUMOR = 'no_tumor';

/**
 * Preprocessed inputs per image buffer, frame and parameter set. The worker runs two models on the same
 * bytes; when they share their preprocessing (as the shipped models do), the image is decoded,
 * trimmed and resized once. Entries go with the buffer.
 */
const preprocessed = new WeakMap<Uint8Array, Map<string, Promise<PreprocessedImage>>>();

export function preprocessShared(image: Uint8Array, params: PreprocessParams, frame = 0): Promise<PreprocessedImage> {
  const key = `${frame}:${JSON.stringify(params)}`;
  let byParams = preprocessed.get(image);
  if (!byParams) preprocessed.set(image, (byParams = new Map()));
  let result = byParams.get(key);
  if (!result) {
    result = preprocessImage(image, params, frame);
    byParams.set(key, result);
    // A failure is not kept: the next call tries again (and reports the error again).
    result.catch(() => byParams.delete(key));
  }
  return result;
}

/**
 * A prediction from the forward pass's output for one preprocessed image: the label, the
 * probabilities by class and, unless `options.heatmap` is false, the heatmap, its peak and the box
 * (none for `no_tumor`), all in the original image's pixels.
 */
export function predictionFrom(
  manifest: ModelManifest,
  input: PreprocessedImage,
  out: { probabilities: Float32Array; maps?: { values: Float32Array; side: number }; atypicality?: Float32Array },
  options: PredictOptions,
  timings: { preprocessMs: number; modelMs: number },
): Prediction {
  const started = performance.now();
  checkFinite(manifest, 'probabilities', out.probabilities);
  if (options.heatmap !== false && out.maps) checkFinite(manifest, 'activation map', out.maps.values);
  const probabilities = Object.fromEntries(manifest.classes.map((c, i) => [c, out.probabilities[i] as number]));
  const label = manifest.classes.reduce((a, b) => ((probabilities[b] as number) > (probabilities[a] as number) ? b : a));
  const prediction: Prediction = { label, probabilities, box: null, timings: { ...timings, heatmapMs: 0 } };
  const typicality = typicalityOf(manifest, out.atypicality, options);
  if (typicality) prediction.typicality = typicality;
  if (options.heatmap !== false) {
    if (!out.maps) throw new Error('a heatmap was asked for but the forward pass gave no map');
    const heatmap = camToHeatmap(out.maps.values, out.maps.side, input.geometry);
    prediction.heatmap = heatmap;
    prediction.peak = heatmapPeak(heatmap, input.geometry);
    prediction.box = label === NO_TUMOR ? null : boxFromHeatmap(heatmap, input.geometry);
    prediction.timings.heatmapMs = performance.now() - started;
  }
  return prediction;
}

/**
 * The image's distance to the training scans and its limit, for a model that measures it; an image
 * beyond the limit is refused (unless `options.refuseAtypical` is false) as unsupported: the
 * network would classify it, and with confidence, though it is nothing like what it learnt from.
 */
function typicalityOf(manifest: ModelManifest, atypicality: Float32Array | undefined, options: PredictOptions): Prediction['typicality'] {
  const limit = manifest.typicality?.limit;
  if (limit === undefined) return undefined;
  const distance = atypicality?.[0];
  if (distance === undefined) throw new Error(`model ${manifest.name}@${manifest.version} gave no typicality distance, though its manifest sets a limit`);
  checkFinite(manifest, 'typicality distance', atypicality as Float32Array);
  if (distance > limit && options.refuseAtypical !== false) {
    throw unsupportedImage(
      `image does not look like the brain MRI slices ${manifest.name} was trained on (its features lie at distance ${distance.toFixed(1)} from theirs, above the limit of ${limit.toFixed(1)}), so its answer could not be trusted: send an axial brain MRI slice`,
    );
  }
  return { distance, limit };
}

/**
 * Refuses an output with a NaN or infinite value (weights that hold one, say): JSON would carry its
 * probabilities as null under a label picked from nothing, and its map would give no box.
 */
function checkFinite(manifest: ModelManifest, what: string, values: Float32Array): void {
  const bad = values.find((v) => !Number.isFinite(v));
  if (bad !== undefined) throw new Error(`model ${manifest.name}@${manifest.version} gave ${String(bad)} in its ${what}: its weights are broken`);
}

class ArtifactModel implements LoadedModel {
  private disposed = false;
  private readonly heatmapClass: number;

  constructor(
    readonly manifest: ModelManifest,
    private readonly forward: ForwardPass,
  ) {
    this.heatmapClass = manifest.heatmapClass ? manifest.classes.indexOf(manifest.heatmapClass) : -1;
  }

  async predict(image: Uint8Array, options: PredictOptions = {}): Promise<Prediction> {
    if (this.disposed) throw new Error(`model ${this.manifest.name}@${this.manifest.version} is disposed`);
    const t0 = performance.now();
    const input = await preprocessShared(image, this.manifest.preprocessing, options.frame);
    const t1 = performance.now();
    const out = this.forward.run(input.pixels, 1, this.heatmapClass);
    return predictionFrom(this.manifest, input, { probabilities: out.probabilities, maps: { values: out.cams, side: out.camSide }, atypicality: out.atypicality }, options, {
      preprocessMs: t1 - t0,
      modelMs: performance.now() - t1,
    });
  }

  /** Runs the underlying forward pass on preprocessed pixels (evaluation uses batches). */
  get forwardPass(): ForwardPass {
    return this.forward;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.forward.dispose();
  }
}

/** A loaded model with its forward pass exposed (for batches and split runs). */
export type ServingModel = LoadedModel & { readonly forwardPass: ForwardPass };

/** Loads an artifact from a directory or from in-memory files (e.g. fetched from object storage). */
export async function loadModel(source: string | ArtifactFiles): Promise<ServingModel> {
  const files = typeof source === 'string' ? await readArtifactDir(source) : source;
  const manifest = parseManifest(files);
  const topologies = manifest.ensemble?.members.map((member) => member.topology) ?? [ARTIFACT_FILES.topology];
  const models: tf.LayersModel[] = [];
  let locator: tf.LayersModel | undefined;
  try {
    for (const topology of topologies) {
      const model = await modelFromArtifact(files, topology);
      models.push(model);
      checkClassifier(model, manifest, topology);
    }
    if (files[ARTIFACT_FILES.locatorTopology]) locator = await modelFromArtifact(files, ARTIFACT_FILES.locatorTopology);
    const typicality = manifest.typicality ? readTypicalityStats(files, ARTIFACT_FILES.typicality) : undefined;
    const views = { flip: manifest.testTimeFlip, rotations: manifest.testTimeRotations, rotateBelow: manifest.testTimeRotationsBelow };
    return new ArtifactModel(manifest, new ForwardPass(models, views, locator, manifest.calibration?.temperature, typicality));
  } catch (error) {
    // A refused artifact leaves nothing loaded: a worker that retries it must not grow with each try.
    for (const model of models) model.dispose();
    locator?.dispose();
    throw error;
  }
}

function checkClassifier(model: tf.LayersModel, manifest: ModelManifest, topology: string): void {
  const shape = model.inputs[0]?.shape;
  if (!shape || shape[1] !== manifest.inputSize || shape[2] !== manifest.inputSize || shape[3] !== 1) {
    throw new Error(`${topology}: model input ${JSON.stringify(shape)} does not match the manifest's ${manifest.inputSize}×${manifest.inputSize}×1`);
  }
  const classes = model.outputs[0]?.shape[1];
  if (classes !== manifest.classes.length) {
    throw new Error(`${topology}: model has ${String(classes)} outputs, the manifest names ${manifest.classes.length} classes`);
  }
}
