import * as tf from '@tensorflow/tfjs';
import type { PreprocessedDataset } from '../data/preprocessed-dataset.js';
import { outlineCoverage, readOutlines, type Outlines } from '../eval/outlines.js';
import type { WorkerInit } from './worker-protocol.js';

/**
 * Outline guidance: on training images with a tumour outline, a loss term asks the classifier's own
 * class activation map (the last block's features weighed by the classifier's kernel column of the
 * image's class) to put its mass inside the outline, so that the evidence the classifier learns to
 * use is the lesion and not something else the tumour scans of the dataset happen to share.
 */

/** Outline masks of a dataset's images at its input size (255 inside, 0 outside), for `indices` only; the rest stay 0. */
export function outlineMasks(dataset: PreprocessedDataset, outlines: Outlines, indices: readonly number[]): { masks: Uint8Array; outlined: number } {
  const size = dataset.params.size;
  const area = size * size;
  const masks = new Uint8Array(dataset.files.length * area);
  let outlined = 0;
  for (const index of indices) {
    const entry = outlines[dataset.files[index]!.relPath];
    if (!entry) continue;
    const coverage = outlineCoverage(entry, dataset.geometries[index]!, size, 1);
    if (!coverage.some((v) => v > 0)) continue;
    coverage.forEach((v, p) => (masks[index * area + p] = v > 0 ? 255 : 0));
    outlined++;
  }
  return { masks, outlined };
}

/**
 * Per image: the cross-entropy between the outline's share of each cell of the activation map's grid
 * and the softmax over the cells of the map of the image's class (its kernel column minus the mean
 * column, so that a map common to every class does not count); 0 for an image without outline.
 *
 * `features` [n, side, side, channels] are the last block's activations, `kernel` [channels, classes]
 * the classifier's kernel, `labels` the image's classes, `masks` [n, size, size, 1] in [0, 1] with
 * size a multiple of side.
 */
export function outlineGuidanceLoss(features: tf.Tensor4D, kernel: tf.Tensor2D, labels: readonly number[], masks: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => {
    const [n, side, , channels] = features.shape;
    const [, size] = masks.shape;
    if (size % side !== 0) throw new Error(`outline guidance needs an input size (${size}) that is a multiple of the activation map's (${side})`);
    const pool = size / side;
    const cells = (pool === 1 ? masks : tf.avgPool(masks, pool, pool, 'valid')).reshape([n, side * side]);
    const mass = cells.sum(1, true);
    const target = cells.div(mass.maximum(1e-6));
    const centred = kernel.sub(kernel.mean(1, true));
    // [n, channels]: each image's class column, picked by a one-hot product (no gather in the gradient).
    const columns = tf.oneHot(tf.tensor1d([...labels], 'int32'), kernel.shape[1]).toFloat().matMul(centred.transpose());
    const maps = features.mul(columns.reshape([n, 1, 1, channels])).sum(3).reshape([n, side * side]);
    return target.mul(tf.logSoftmax(maps)).sum(1).neg() as tf.Tensor1D;
  });
}

/** What a guided run's manifest records. */
export interface OutlineGuidanceRecord {
  weight: number;
  /** Training images with an outline, which the term applies to. */
  outlinedImages: number;
}

/**
 * The gradient workers' guidance for the training images (`train`) of known class (label ≥ 0) that
 * have an outline in `outlinesFile`; an error when none has.
 */
export async function outlineGuidanceFor(
  dataset: PreprocessedDataset,
  labels: Int32Array,
  train: readonly number[],
  outlinesFile: string,
  weight: number,
): Promise<{ init: NonNullable<WorkerInit['outlineGuidance']>; record: OutlineGuidanceRecord }> {
  const known = train.filter((i) => (labels[i] as number) >= 0);
  const { masks, outlined } = outlineMasks(dataset, await readOutlines(outlinesFile), known);
  if (outlined === 0) throw new Error(`outline guidance: no training image has an outline in ${outlinesFile}`);
  const shared = new SharedArrayBuffer(masks.byteLength);
  new Uint8Array(shared).set(masks);
  return { init: { masks: shared, weight }, record: { weight, outlinedImages: outlined } };
}
