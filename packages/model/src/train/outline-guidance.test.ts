import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import type { PreprocessedDataset } from '../data/preprocessed-dataset.js';
import { createRandom } from '../util/random.js';
import { DEFAULT_AUGMENTATION, augmentBatch, augmentWithMasks } from './augmentation.js';
import { outlineGuidanceLoss, outlineMasks } from './outline-guidance.js';

beforeAll(async () => {
  await initBackend();
});

describe('outline masks', () => {
  // An 8-pixel input whose square spans original pixels (0, 0) to (80, 80): one input pixel is 10 original pixels.
  const geometry = { originalWidth: 80, originalHeight: 80, squareX: 0, squareY: 0, squareSide: 80 };
  const files = ['yes/a.jpg', 'yes/b.jpg', 'no/c.jpg'].map((relPath) => ({ relPath, path: relPath, label: 'tumor', size: 1, mtimeMs: 0 }));
  const dataset = {
    params: { version: 1, size: 8, trimThreshold: 20, trimMinShare: 0.01 },
    files,
    pixels: new Uint8Array(3 * 64),
    geometries: files.map(() => geometry),
    rejected: [],
  } satisfies PreprocessedDataset;
  const square = { regions: [{ name: 'polygon' as const, all_points_x: [20, 40, 40, 20], all_points_y: [10, 10, 30, 30] }] };

  it('marks the input pixels inside the outline, only for the images asked for', () => {
    const { masks, outlined } = outlineMasks(dataset, { 'yes/a.jpg': square, 'yes/b.jpg': square }, [0, 2]);
    expect(outlined).toBe(1);
    // Pixel centres at 25 and 35 original pixels across, 15 and 25 down, lie inside.
    const inside = [1 * 8 + 2, 1 * 8 + 3, 2 * 8 + 2, 2 * 8 + 3];
    Array.from(masks.subarray(0, 64)).forEach((v, p) => expect(v).toBe(inside.includes(p) ? 255 : 0));
    // b has an outline but was not asked for; c has none.
    expect(masks.subarray(64).every((v) => v === 0)).toBe(true);
  });

  it('skips an outline that lies outside the model input', () => {
    const far = { regions: [{ name: 'circle' as const, cx: 500, cy: 500, r: 5 }] };
    expect(outlineMasks(dataset, { 'yes/a.jpg': far }, [0]).outlined).toBe(0);
  });
});

describe('the outline guidance loss', () => {
  it("is the cross-entropy between the outline's cells and the softmax of the image's class map", () => {
    const [loss, empty] = tf.tidy(() => {
      // Two images, a 2×2 map of 2 channels, 2 classes.
      const features = tf.tensor4d([1, 0, 0, 2, 3, 1, 0.5, 0, /* image 2 */ 1, 1, 1, 1, 1, 1, 1, 1], [2, 2, 2, 2]);
      const kernel = tf.tensor2d([[2, 0], [-1, 1]]);
      // 4×4 masks: image 1's outline covers its top-left and (half of) its top-right cell; image 2 has none.
      const masks = tf.tensor4d([1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...new Array<number>(16).fill(0)], [2, 4, 4, 1]);
      return outlineGuidanceLoss(features, kernel, [1, 0], masks).arraySync();
    });
    // Class 1's column minus the mean column: [0 - 1, 1 - 0] = [-1, 1]; the map per cell (channels [c0, c1]).
    const cells = [[1, 0], [0, 2], [3, 1], [0.5, 0]].map(([c0, c1]) => -c0! + c1!);
    const logSum = Math.log(cells.reduce((s, v) => s + Math.exp(v), 0));
    const target = [4 / 6, 2 / 6, 0, 0];
    const expected = -target.reduce((s, t, i) => s + t * (cells[i]! - logSum), 0);
    expect(loss).toBeCloseTo(expected, 5);
    expect(empty).toBeCloseTo(0, 10);
  });

  it('is lowest when the map peaks inside the outline', () => {
    const lossFor = (peak: number) =>
      tf.tidy(() => {
        const map = [0, 0, 0, 0];
        map[peak] = 4;
        const features = tf.tensor4d(map, [1, 2, 2, 1]);
        const masks = tf.tensor4d([0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0], [1, 4, 4, 1]);
        return outlineGuidanceLoss(features, tf.tensor2d([[1, -1]]), [0], masks).arraySync()[0]!;
      });
    const inside = lossFor(1);
    [0, 2, 3].forEach((peak) => expect(lossFor(peak)).toBeGreaterThan(inside + 1));
  });
});

describe('augmentation with masks', () => {
  const config = { ...DEFAULT_AUGMENTATION, flip: true, rotateDeg: 20, scale: 0.1, shift: 0.1, brightness: 0.2, contrast: 0.3 };

  it('gives the images augmentBatch gives, and moves each mask as its image', () => {
    const [plain, withMasks, moved, movedAlone] = tf.tidy(() => {
      const pattern = tf.tensor4d(Array.from({ length: 4 * 16 * 16 }, (_, i) => ((i * 7) % 13) / 12), [4, 16, 16, 1]);
      const masks = pattern.greater(0.5).toFloat() as tf.Tensor4D;
      const a = augmentBatch(pattern, config, createRandom(3));
      const b = augmentWithMasks(pattern, masks, config, createRandom(3));
      // The masks' own transform, without brightness and contrast, applied to the masks as images.
      const geometric = augmentBatch(masks, { ...config, brightness: 0, contrast: 0 }, createRandom(3));
      return [a.arraySync(), b.images.arraySync(), b.masks.arraySync(), geometric.arraySync()];
    });
    expect(withMasks).toEqual(plain);
    // Had the brightness or contrast change reached the masks, they would differ from the masks moved alone.
    expect(moved).toEqual(movedAlone);
  });
});
