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
  /** Largest change of the grey-level curve, as |ln γ| of x ↦ x^γ (0.3: γ from 0.74 to 1.35); 0 for none. */
  gamma: number;
  /**
   * Largest unsharp-mask amount either way: x + a (x − blur(x)) with a drawn from ±sharpen, so positive
   * draws sharpen and negative ones blur (a stops at −1, the blurred image itself); 0 for none.
   */
  sharpen: number;
  /** Largest standard deviation of added Gaussian noise; each image draws its own, up to this; 0 for none. */
  noise: number;
}

export const DEFAULT_AUGMENTATION: AugmentationConfig = {
  flip: true,
  rotateDeg: 12,
  scale: 0.1,
  shift: 0.06,
  brightness: 0.08,
  contrast: 0.15,
  gamma: 0,
  sharpen: 0,
  noise: 0,
};

/** Standard deviation, in pixels, of the Gaussian blur that the unsharp mask subtracts. */
const BLUR_SIGMA = 1;

/**
 * Augments a batch [n, s, s, 1] in [0, 1] with one projective transform per image (rotation, zoom,
 * shift and mirror in one resampling), then, where configured, a gamma curve, a sharpening or blur and
 * noise, and a brightness/contrast change. `random` makes it reproducible; the intensity changes that
 * are off draw nothing from it, so turning them on leaves the other draws as they were.
 */
export function augmentBatch(images: tf.Tensor4D, config: AugmentationConfig, random: () => number): tf.Tensor4D {
  return augment(images, undefined, config, random).images;
}

/**
 * The same as augmentBatch, with each image's mask [n, s, s, 1] moved by its image's transform (and
 * left out of the intensity changes). The images come out as augmentBatch gives them.
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
    const gammas: number[] = [];
    const amounts: number[] = [];
    const noiseSds: number[] = [];
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
      if (config.gamma > 0) gammas.push(Math.exp(uniform(config.gamma)));
      if (config.sharpen > 0) amounts.push(Math.max(-1, uniform(config.sharpen)));
      if (config.noise > 0) noiseSds.push(random() * config.noise);
    }
    const noiseSeed = config.noise > 0 ? Math.floor(random() * 2 ** 31) : 0;
    const stacked = masks ? tf.concat([images, masks], 3) : images;
    const warped = tf.image.transform(stacked, tf.tensor2d(transforms, [n, 8]), 'bilinear', 'constant', 0);
    const warpedImages = masks ? warped.slice([0, 0, 0, 0], [-1, -1, -1, 1]) : warped;
    const perImage = (values: number[]) => tf.tensor4d(values, [n, 1, 1, 1]);
    let changed = warpedImages as tf.Tensor4D;
    if (gammas.length > 0) changed = changed.clipByValue(0, 1).pow(perImage(gammas));
    if (amounts.length > 0) changed = changed.add(changed.sub(gaussianBlur(changed, BLUR_SIGMA)).mul(perImage(amounts)));
    if (noiseSds.length > 0) changed = changed.add(tf.randomNormal(changed.shape, 0, 1, 'float32', noiseSeed).mul(perImage(noiseSds)));
    const out = changed.mul(perImage(gains)).add(perImage(offsets)).clipByValue(0, 1) as tf.Tensor4D;
    return masks ? { images: out, masks: warped.slice([0, 0, 0, 1], [-1, -1, -1, 1]) as tf.Tensor4D } : { images: out };
  });
}

/** A Gaussian blur of single-channel images, over ±2σ, with the border padded by zeros (the background). */
function gaussianBlur(images: tf.Tensor4D, sigma: number): tf.Tensor4D {
  const radius = Math.ceil(2 * sigma);
  const taps = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
  const total = taps.reduce((a, b) => a + b, 0);
  const weights = taps.map((t) => t / total);
  const rows = tf.tensor4d(weights, [weights.length, 1, 1, 1]);
  const columns = tf.tensor4d(weights, [1, weights.length, 1, 1]);
  return tf.conv2d(tf.conv2d(images, rows, 1, 'same'), columns, 1, 'same');
}
