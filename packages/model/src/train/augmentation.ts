import * as tf from '@tensorflow/tfjs';
import { similarityTransform } from '../model/image-transform.js';

/** Random, label-preserving changes applied to each training image on the fly. */
export interface AugmentationConfig {
  flip: boolean;
  /** Largest rotation, degrees. */
  rotateDeg: number;
  /** Largest relative zoom in or out. */
  scale: number;
  /** Largest shift, as a share of the side. */
  shift: number;
  /** Largest brightness offset (images are in [0, 1]). */
  brightness: number;
  /** Largest relative contrast change. */
  contrast: number;
}

export const DEFAULT_AUGMENTATION: AugmentationConfig = {
  flip: true,
  rotateDeg: 12,
  scale: 0.1,
  shift: 0.06,
  brightness: 0.08,
  contrast: 0.15,
};

/**
 * Augments a batch [n, s, s, 1] in [0, 1] with one projective transform per image (rotation, zoom,
 * shift and mirror in one resampling) and a brightness/contrast change. `random` makes it reproducible.
 */
export function augmentBatch(images: tf.Tensor4D, config: AugmentationConfig, random: () => number): tf.Tensor4D {
  return augment(images, undefined, config, random).images;
}

/**
 * The same as augmentBatch, with each image's mask [n, s, s, 1] moved by its image's transform (and
 * left out of the brightness and contrast change). The images come out as augmentBatch gives them.
 */
export function augmentWithMasks(
  images: tf.Tensor4D,
  masks: tf.Tensor4D,
  config: AugmentationConfig,
  random: () => number,
): { images: tf.Tensor4D; masks: tf.Tensor4D } {
  const out = augment(images, masks, config, random);
  return { images: out.images, masks: out.masks as tf.Tensor4D };
}

function augment(
  images: tf.Tensor4D,
  masks: tf.Tensor4D | undefined,
  config: AugmentationConfig,
  random: () => number,
): { images: tf.Tensor4D; masks?: tf.Tensor4D } {
  return tf.tidy(() => {
    const [n, side] = images.shape;
    const uniform = (limit: number) => (2 * random() - 1) * limit;
    const transforms: number[] = [];
    const gains: number[] = [];
    const offsets: number[] = [];
    for (let i = 0; i < n; i++) {
      transforms.push(
        ...similarityTransform(side, {
          angle: (uniform(config.rotateDeg) * Math.PI) / 180,
          zoom: 1 + uniform(config.scale),
          mirror: config.flip && random() < 0.5,
          shiftX: uniform(config.shift) * side,
          shiftY: uniform(config.shift) * side,
        }),
      );
      gains.push(1 + uniform(config.contrast));
      offsets.push(uniform(config.brightness));
    }
    const stacked = masks ? tf.concat([images, masks], 3) : images;
    const warped = tf.image.transform(stacked, tf.tensor2d(transforms, [n, 8]), 'bilinear', 'constant', 0);
    const warpedImages = masks ? warped.slice([0, 0, 0, 0], [-1, -1, -1, 1]) : warped;
    const gain = tf.tensor4d(gains, [n, 1, 1, 1]);
    const offset = tf.tensor4d(offsets, [n, 1, 1, 1]);
    const out = warpedImages.mul(gain).add(offset).clipByValue(0, 1) as tf.Tensor4D;
    return masks ? { images: out, masks: warped.slice([0, 0, 0, 1], [-1, -1, -1, 1]) as tf.Tensor4D } : { images: out };
  });
}
