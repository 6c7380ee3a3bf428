import * as tf from '@tensorflow/tfjs';

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
  return tf.tidy(() => {
    const [n, side] = images.shape;
    const uniform = (limit: number) => (2 * random() - 1) * limit;
    const transforms: number[] = [];
    const gains: number[] = [];
    const offsets: number[] = [];
    const c = (side - 1) / 2;
    for (let i = 0; i < n; i++) {
      const angle = (uniform(config.rotateDeg) * Math.PI) / 180;
      const zoom = 1 + uniform(config.scale);
      const mirror = config.flip && random() < 0.5 ? -1 : 1;
      const tx = uniform(config.shift) * side;
      const ty = uniform(config.shift) * side;
      // Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2): the inverse map.
      const cos = Math.cos(angle) / zoom;
      const sin = Math.sin(angle) / zoom;
      const a0 = cos * mirror;
      const a1 = -sin;
      const b0 = sin * mirror;
      const b1 = cos;
      transforms.push(a0, a1, c - a0 * c - a1 * c + tx, b0, b1, c - b0 * c - b1 * c + ty, 0, 0);
      gains.push(1 + uniform(config.contrast));
      offsets.push(uniform(config.brightness));
    }
    const warped = tf.image.transform(images, tf.tensor2d(transforms, [n, 8]), 'bilinear', 'constant', 0);
    const gain = tf.tensor4d(gains, [n, 1, 1, 1]);
    const offset = tf.tensor4d(offsets, [n, 1, 1, 1]);
    return warped.mul(gain).add(offset).clipByValue(0, 1) as tf.Tensor4D;
  });
}
