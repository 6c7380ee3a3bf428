import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { averageViews, stackViews, viewCount } from './test-time-views.js';

/** A 1 × 5 × 5 × 1 image whose pixels are all different: pixel (x, y) = 5y + x. */
const image = () => tf.tensor4d(Array.from({ length: 25 }, (_, i) => i), [1, 5, 5, 1]);
const grid = (t: tf.Tensor) => (t.reshape([5, 5]).arraySync() as number[][]).map((row) => row.map((v) => Math.round(v * 1000) / 1000));

describe('test-time views', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('counts the image, its mirror and every rotation of both', () => {
    expect(viewCount({ flip: false })).toBe(1);
    expect(viewCount({ flip: true })).toBe(2);
    expect(viewCount({ flip: true, rotations: [-5, 5] })).toBe(6);
    expect(viewCount({ flip: false, rotations: [10] })).toBe(2);
  });

  it('stacks the image, its mirror, then each rotation of the image and of the mirror', () => {
    tf.tidy(() => {
      const x = image();
      const stacked = stackViews(x, { flip: true, rotations: [90] });
      expect(stacked.shape).toEqual([4, 5, 5, 1]);
      const [plain, mirror, rotated, rotatedMirror] = tf.split(stacked, 4, 0);
      expect(grid(plain!)).toEqual(grid(x));
      expect(grid(mirror!)).toEqual(grid(tf.reverse(x, 2)));
      // A quarter turn lands pixels exactly on pixels: output (col, row) samples input (4 - row, col).
      const source = grid(x);
      expect(grid(rotated!)).toEqual(source.map((line, row) => line.map((_, col) => source[col]![4 - row]!)));
      // The mirror image turned the other way: input (4 - row, 4 - col).
      expect(grid(rotatedMirror!)).toEqual(source.map((line, row) => line.map((_, col) => source[4 - col]![4 - row]!)));
    });
  });

  it('averages vectors over every view and maps over the image and its mirror flipped back', () => {
    tf.tidy(() => {
      const views = { flip: true, rotations: [90] };
      const vectors = tf.tensor2d([[1, 0], [0, 1], [1, 1], [2, 2]]);
      expect(averageViews(vectors, views).arraySync()).toEqual([[1, 1]]);
      const maps = tf.concat([image(), tf.reverse(image(), 2), tf.fill([2, 5, 5, 1], 100)], 0);
      expect(grid(averageViews(maps, views))).toEqual(grid(image()));
      const single = vectors.slice(0, 1);
      expect(averageViews(single, { flip: false })).toBe(single);
    });
  });
});
