import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { averageBlocks, averageMirrorViews, mirrorViews, rotatedViews } from './test-time-views.js';

/** A 1 × 5 × 5 × 1 image whose pixels are all different: pixel (x, y) = 5y + x. */
const image = () => tf.tensor4d(Array.from({ length: 25 }, (_, i) => i), [1, 5, 5, 1]);
const grid = (t: tf.Tensor) => (t.reshape([5, 5]).arraySync() as number[][]).map((row) => row.map((v) => Math.round(v * 1000) / 1000));

describe('test-time views', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('stacks the image and its mirror, and per angle the rotated image and rotated mirror', () => {
    tf.tidy(() => {
      const x = image();
      expect(mirrorViews(x, false)).toBe(x);
      const [plain, mirror] = tf.split(mirrorViews(x, true), 2, 0);
      expect(grid(plain!)).toEqual(grid(x));
      expect(grid(mirror!)).toEqual(grid(tf.reverse(x, 2)));
      expect(rotatedViews(x, false, [90, -90, 5]).shape).toEqual([3, 5, 5, 1]);
      const stacked = rotatedViews(x, true, [90]);
      expect(stacked.shape).toEqual([2, 5, 5, 1]);
      const [rotated, rotatedMirror] = tf.split(stacked, 2, 0);
      // A quarter turn lands pixels exactly on pixels: output (col, row) samples input (4 - row, col).
      const source = grid(x);
      expect(grid(rotated!)).toEqual(source.map((line, row) => line.map((_, col) => source[col]![4 - row]!)));
      // The mirror image turned the other way: input (4 - row, 4 - col).
      expect(grid(rotatedMirror!)).toEqual(source.map((line, row) => line.map((_, col) => source[4 - col]![4 - row]!)));
    });
  });

  it('averages vectors over both mirror views and maps with the mirror flipped back; blocks by their mean', () => {
    tf.tidy(() => {
      const vectors = tf.tensor2d([[1, 0], [0, 1]]);
      expect(averageMirrorViews(vectors, true).arraySync()).toEqual([[0.5, 0.5]]);
      expect(averageMirrorViews(vectors, false)).toBe(vectors);
      const maps = tf.concat([image(), tf.reverse(image(), 2)], 0);
      expect(grid(averageMirrorViews(maps, true))).toEqual(grid(image()));
      expect(averageBlocks(tf.tensor2d([[1, 0], [0, 1], [1, 1], [2, 2]]), 4).arraySync()).toEqual([[1, 1]]);
      expect(averageBlocks(tf.tensor2d([[1, 0], [3, 2]]), 2).arraySync()).toEqual([[2, 1]]);
    });
  });
});
