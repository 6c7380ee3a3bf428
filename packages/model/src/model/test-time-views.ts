import * as tf from '@tensorflow/tfjs';
import { similarityTransform } from './image-transform.js';

/** The copies of each image that a prediction averages. */
export interface TestTimeViews {
  /** The left–right mirror image too. */
  flip: boolean;
  /** Copies rotated about the centre by these angles, in degrees; each is mirrored too with `flip`. */
  rotations?: readonly number[];
  /**
   * Only images whose top class probability from the image (and mirror) alone, before temperature
   * scaling, is below this get the rotated copies. Absent: every image.
   */
  rotateBelow?: number;
}

/** How many copies of each image the image and its mirror make. */
export function mirrorCount(flip: boolean): number {
  return flip ? 2 : 1;
}

/**
 * Stacks a batch [n, s, s, c] and, with `flip`, its mirror images along the batch axis, one block
 * of n per view. Call inside a tidy.
 */
export function mirrorViews(x: tf.Tensor4D, flip: boolean): tf.Tensor4D {
  return flip ? tf.concat([x, tf.reverse(x, 2)], 0) : x;
}

/**
 * Stacks the rotated copies of a batch [n, s, s, c], one block of n per view: for each angle the
 * rotated images and, with `flip`, their rotated mirrors. Rotations resample bilinearly and fill
 * with black, the background of every preprocessed scan. Call inside a tidy.
 */
export function rotatedViews(x: tf.Tensor4D, flip: boolean, rotations: readonly number[]): tf.Tensor4D {
  const [n, side] = x.shape;
  const mirrors = flip ? [false, true] : [false];
  const blocks = rotations.flatMap((degrees) =>
    mirrors.map((mirror) => {
      const transform = similarityTransform(side, { angle: (degrees * Math.PI) / 180, zoom: 1, mirror, shiftX: 0, shiftY: 0 });
      return tf.image.transform(x, tf.tensor2d(Array.from({ length: n }, () => transform).flat(), [n, 8]), 'bilinear', 'constant', 0);
    }),
  );
  return tf.concat(blocks, 0);
}

/**
 * Averages one output of a network run on `mirrorViews`: a vector per image (probabilities) over
 * both views, a map (feature maps, locator maps) over the image and its mirror flipped back. Call
 * inside a tidy.
 */
export function averageMirrorViews(out: tf.Tensor, flip: boolean): tf.Tensor {
  if (!flip) return out;
  const [plain, mirrored] = tf.split(out, 2, 0) as [tf.Tensor, tf.Tensor];
  return plain.add(out.rank >= 3 ? tf.reverse(mirrored, 2) : mirrored).div(2);
}

/** Mean over the blocks of an output [blocks·n, ...] of a network run on stacked views. Call inside a tidy. */
export function averageBlocks(out: tf.Tensor, blocks: number): tf.Tensor {
  return blocks === 1 ? out : tf.addN(tf.split(out, blocks, 0)).div(blocks);
}
