import * as tf from '@tensorflow/tfjs';
import { similarityTransform } from './image-transform.js';

/** The copies of each image that a prediction averages. */
export interface TestTimeViews {
  /** The left–right mirror image too. */
  flip: boolean;
  /** Copies rotated about the centre by these angles, in degrees; each is mirrored too with `flip`. */
  rotations?: readonly number[];
}

/** How many copies of each image `views` stands for, the image itself included. */
export function viewCount(views: TestTimeViews): number {
  return (views.flip ? 2 : 1) * (1 + (views.rotations?.length ?? 0));
}

/**
 * Stacks the views of a batch [n, s, s, c] along the batch axis, one block of n per view: the
 * images, their mirrors (with `flip`), then per rotation the rotated images and rotated mirrors.
 * Rotations resample bilinearly and fill with black, the background of every preprocessed scan.
 * Call inside a tidy.
 */
export function stackViews(x: tf.Tensor4D, views: TestTimeViews): tf.Tensor4D {
  const [n, side] = x.shape;
  const mirrors = views.flip ? [false, true] : [false];
  const blocks: tf.Tensor4D[] = views.flip ? [x, tf.reverse(x, 2)] : [x];
  for (const degrees of views.rotations ?? []) {
    for (const mirror of mirrors) {
      const transform = similarityTransform(side, { angle: (degrees * Math.PI) / 180, zoom: 1, mirror, shiftX: 0, shiftY: 0 });
      const transforms = tf.tensor2d(Array.from({ length: n }, () => transform).flat(), [n, 8]);
      blocks.push(tf.image.transform(x, transforms, 'bilinear', 'constant', 0));
    }
  }
  return blocks.length === 1 ? x : tf.concat(blocks, 0);
}

/**
 * Averages one output of a network run on `stackViews`: over every view when it is a vector per
 * image (probabilities), and over the image and its mirror flipped back when it is a map (feature
 * maps, locator maps), since a rotated map no longer lines up with the image. Call inside a tidy.
 */
export function averageViews(out: tf.Tensor, views: TestTimeViews): tf.Tensor {
  const count = viewCount(views);
  if (count === 1) return out;
  const blocks = tf.split(out, count, 0);
  if (out.rank < 3) return tf.addN(blocks).div(count);
  return views.flip ? blocks[0]!.add(tf.reverse(blocks[1]!, 2)).div(2) : blocks[0]!;
}
