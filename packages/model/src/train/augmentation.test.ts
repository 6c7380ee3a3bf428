import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { createRandom } from '../util/random.js';
import { DEFAULT_AUGMENTATION, augmentBatch, augmentWithMasks, type AugmentationConfig } from './augmentation.js';

beforeAll(async () => {
  await initBackend();
});

/** Intensity changes alone: no movement, mirror, brightness or contrast. */
const STILL: AugmentationConfig = { ...DEFAULT_AUGMENTATION, flip: false, rotateDeg: 0, scale: 0, shift: 0, brightness: 0, contrast: 0 };
const SIDE = 16;

function constantBatch(n: number, value: number): tf.Tensor4D {
  return tf.fill([n, SIDE, SIDE, 1], value) as tf.Tensor4D;
}

/** Left half `low`, right half `high`: one vertical edge down the middle. */
function edgeBatch(n: number, low: number, high: number): tf.Tensor4D {
  const row = Array.from({ length: SIDE }, (_, x) => (x < SIDE / 2 ? low : high));
  return tf.tensor4d(Array.from({ length: n * SIDE }, () => row).flat(), [n, SIDE, SIDE, 1]);
}

function augmented(images: tf.Tensor4D, config: AugmentationConfig, seed: number): number[][][] {
  return tf.tidy(() => augmentBatch(images, config, createRandom(seed)).squeeze([3]).arraySync() as number[][][]);
}

describe('intensity augmentation', () => {
  it('draws no random numbers for the changes that are off, so earlier recipes augment as before', () => {
    let draws = 0;
    const random = createRandom(1);
    const counted = () => {
      draws++;
      return random();
    };
    tf.tidy(() => augmentBatch(constantBatch(4, 0.5), { ...DEFAULT_AUGMENTATION, flip: false }, counted));
    // Rotation, zoom, two shifts, contrast and brightness per image.
    expect(draws).toBe(4 * 6);
    draws = 0;
    tf.tidy(() => augmentBatch(constantBatch(4, 0.5), { ...DEFAULT_AUGMENTATION, flip: false, gamma: 0.3, sharpen: 0.5, noise: 0.02 }, counted));
    expect(draws).toBe(4 * 9 + 1);
  });

  it('bends the grey levels by a gamma within the limit, both ways, keeping their order', () => {
    const images = augmented(edgeBatch(32, 0.3, 0.6), { ...STILL, gamma: 0.4 }, 5);
    const lows = images.map((image) => image[0]?.[0] ?? NaN);
    const highs = images.map((image) => image[0]?.[SIDE - 1] ?? NaN);
    for (const [i, low] of lows.entries()) {
      expect(low).toBeGreaterThanOrEqual(0.3 ** Math.exp(0.4) - 1e-6);
      expect(low).toBeLessThanOrEqual(0.3 ** Math.exp(-0.4) + 1e-6);
      // The same γ on both halves: ln(low) / ln(high) stays ln 0.3 / ln 0.6.
      expect(Math.log(low) / Math.log(highs[i] ?? NaN)).toBeCloseTo(Math.log(0.3) / Math.log(0.6), 4);
    }
    expect(lows.some((v) => v < 0.29)).toBe(true);
    expect(lows.some((v) => v > 0.31)).toBe(true);
  });

  it('sharpens some edges and blurs others, and leaves flat regions as they were', () => {
    const images = augmented(edgeBatch(32, 0.3, 0.6), { ...STILL, sharpen: 0.8 }, 7);
    const mid = SIDE / 2;
    // The step across the edge: larger than 0.3 when sharpened, smaller when blurred.
    const steps = images.map((image) => (image[mid]?.[mid] ?? NaN) - (image[mid]?.[mid - 1] ?? NaN));
    expect(steps.some((step) => step > 0.35)).toBe(true);
    expect(steps.some((step) => step < 0.25)).toBe(true);
    for (const image of images) {
      // Four pixels from the edge and from the border the blur sees only one grey level.
      expect(image[mid]?.[3]).toBeCloseTo(0.3, 5);
      expect(image[mid]?.[SIDE - 4]).toBeCloseTo(0.6, 5);
    }
  });

  it('adds noise of at most the given spread, the same for the same seed', () => {
    const config = { ...STILL, noise: 0.05 };
    const images = augmented(constantBatch(8, 0.5), config, 3);
    const spreads = images.map((image) => {
      const values = image.flat();
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      expect(mean).toBeCloseTo(0.5, 1);
      return Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
    });
    spreads.forEach((spread) => expect(spread).toBeLessThan(0.05 * 1.15));
    expect(Math.max(...spreads)).toBeGreaterThan(0.01);
    expect(augmented(constantBatch(8, 0.5), config, 3)).toEqual(images);
    expect(augmented(constantBatch(8, 0.5), config, 4)).not.toEqual(images);
  });

  it('moves the masks with the image and leaves them out of the intensity changes', () => {
    const config = { ...DEFAULT_AUGMENTATION, rotateDeg: 20, shift: 0.1, gamma: 0.3, sharpen: 0.5, noise: 0.05 };
    const [moved, movedAlone] = tf.tidy(() => {
      const images = edgeBatch(1, 0.2, 0.7);
      const masks = edgeBatch(1, 0, 1);
      const withMasks = augmentWithMasks(images, masks, config, createRandom(9));
      // One image: its transform takes the first draws whatever the intensity changes draw after them.
      const geometric = augmentBatch(masks, { ...config, brightness: 0, contrast: 0, gamma: 0, sharpen: 0, noise: 0 }, createRandom(9));
      return [withMasks.masks.arraySync(), geometric.arraySync()];
    });
    expect(moved).toEqual(movedAlone);
  });
});
