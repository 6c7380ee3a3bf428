import * as tf from '@tensorflow/tfjs';
import { inverse, Matrix } from 'ml-matrix';
import type { ArtifactFiles } from './artifact.js';

/**
 * How far an image lies from the scans a model was trained on, in the space of its first
 * classifier's last-block features averaged over the map (one value per channel): the Mahalanobis
 * distance to a Gaussian fitted on the training images and their mirrors. A network classifies
 * whatever it is given, and noise, a photo or a page of text get a confident answer from it; their
 * features lie far from every training scan's, so a limit on this distance refuses them. The image
 * and its mirror each get a distance and the two are averaged, so a split forward pass (one view
 * per piece) gives the same figure as a whole one.
 */

/** The Gaussian an artifact's `typicality.json` holds. */
export interface TypicalityStats {
  /** Mean of the pooled features, one value per channel. */
  mean: number[];
  /** Inverse of their covariance (with a small ridge), row-major, channels × channels. */
  precision: number[];
}

/** Features averaged over the map: [n, side, side, channels] → [n, channels]. Call inside a tidy. */
export function pooledFeatures(features: tf.Tensor4D): tf.Tensor2D {
  return features.mean([1, 2]);
}

/**
 * Fits the Gaussian on pooled feature vectors (each one view of one image). The ridge, a share of
 * the mean variance added to every variance, keeps the covariance invertible when channels are
 * dead or move together.
 */
export function fitTypicality(vectors: readonly ArrayLike<number>[], ridge = 1e-3): TypicalityStats {
  const channels = vectors[0]?.length ?? 0;
  if (vectors.length <= channels) throw new Error(`fitting typicality needs more feature vectors (${vectors.length}) than channels (${channels})`);
  const data = new Matrix(vectors.map((v) => Array.from(v)));
  const mean = data.mean('column');
  data.subRowVector(mean);
  const covariance = data.transpose().mmul(data).div(vectors.length - 1);
  const meanVariance = covariance.diag().reduce((a, b) => a + b, 0) / channels;
  for (let i = 0; i < channels; i++) covariance.set(i, i, covariance.get(i, i) + ridge * meanVariance);
  return { mean, precision: inverse(covariance).to1DArray() };
}

/** The Gaussian as tensors, ready to measure batches; dispose when done. */
export class TypicalityGauge {
  private readonly mean: tf.Tensor1D;
  private readonly precision: tf.Tensor2D;

  constructor(stats: TypicalityStats) {
    const channels = stats.mean.length;
    this.mean = tf.tensor1d(stats.mean);
    this.precision = tf.tensor2d(stats.precision, [channels, channels]);
  }

  get channels(): number {
    return this.mean.shape[0];
  }

  /** Mahalanobis distance of each row of `pooled` ([n, channels]) to the training scans. Call inside a tidy. */
  distances(pooled: tf.Tensor2D): tf.Tensor1D {
    const centred = pooled.sub(this.mean);
    return centred.matMul(this.precision).mul(centred).sum(1).relu().sqrt() as tf.Tensor1D;
  }

  dispose(): void {
    this.mean.dispose();
    this.precision.dispose();
  }
}

/** The `quantile` (0–1) of `distances`, times `margin`. */
export function typicalityLimit(distances: ArrayLike<number>, quantile: number, margin: number): number {
  const sorted = Float64Array.from(distances).sort();
  if (sorted.length === 0) throw new Error('a typicality limit needs at least one distance');
  return (sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))] as number) * margin;
}

/**
 * Reads an artifact's typicality file, refusing one that is not a mean and a square precision of
 * finite numbers, naming the file.
 */
export function readTypicalityStats(files: ArtifactFiles, file: string): TypicalityStats {
  const bytes = files[file];
  if (!bytes) throw new Error(`model artifact has no ${file}, which its manifest names`);
  let value: Partial<TypicalityStats> | null;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes)) as Partial<TypicalityStats> | null;
  } catch (error) {
    throw new Error(`model artifact's ${file} is not valid JSON (${(error as Error).message}); the file may be cut short`, { cause: error });
  }
  const finite = (list: unknown): list is number[] => Array.isArray(list) && list.every((v) => typeof v === 'number' && Number.isFinite(v));
  const channels = Array.isArray(value?.mean) ? value.mean.length : 0;
  if (channels === 0 || !finite(value?.mean) || !finite(value.precision) || value.precision.length !== channels * channels) {
    throw new Error(`model artifact's ${file} must hold a mean of n finite numbers and a precision of n×n`);
  }
  return { mean: value.mean, precision: value.precision };
}
