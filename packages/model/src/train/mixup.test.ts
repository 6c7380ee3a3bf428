import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createRandom } from '../util/random.js';
import { mixBatch, sampleGamma, sampleSymmetricBeta } from './mixup.js';

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

describe('Beta and Gamma draws', () => {
  it('have the Gamma mean and variance (shape) for shapes below and above 1', () => {
    for (const shape of [0.2, 2.5]) {
      const random = createRandom(11);
      const draws = Array.from({ length: 20000 }, () => sampleGamma(shape, random));
      const m = mean(draws);
      const variance = mean(draws.map((d) => (d - m) ** 2));
      expect(m).toBeCloseTo(shape, 1);
      expect(variance).toBeGreaterThan(shape * 0.9);
      expect(variance).toBeLessThan(shape * 1.1);
    }
  });

  it('puts Beta(0.2, 0.2) mass near 0 and 1 and keeps the mean at 1/2', () => {
    const random = createRandom(5);
    const draws = Array.from({ length: 20000 }, () => sampleSymmetricBeta(0.2, random));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThanOrEqual(1);
    expect(mean(draws)).toBeCloseTo(0.5, 1);
    // Var Beta(a, a) = 1 / (4 (2a + 1)) = 0.1786 for a = 0.2.
    const variance = mean(draws.map((d) => (d - 0.5) ** 2));
    expect(variance).toBeGreaterThan(0.16);
    expect(variance).toBeLessThan(0.19);
  });
});

describe('mixBatch', () => {
  const images = tf.tensor4d([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], [3, 2, 2, 1]);
  const targets = tf.tensor2d([1, 0, 0, 1, 1, 0], [3, 2]);

  it('returns the batch unchanged when alpha is 0', () => {
    const mixed = mixBatch(images, targets, 0, createRandom(1));
    expect(mixed.x).toBe(images);
    expect(mixed.target).toBe(targets);
    expect(mixed.lambda).toBe(1);
  });

  it('blends every image and target with one partner by the same weight, its own part the larger', () => {
    const before = tf.memory().numTensors;
    for (const seed of [1, 2, 3, 4]) {
      const mixed = mixBatch(images, targets, 0.4, createRandom(seed));
      const x = mixed.x.arraySync() as number[][][][];
      const t = mixed.target.arraySync() as number[][];
      const l = mixed.lambda;
      expect(l).toBeGreaterThanOrEqual(0.5);
      expect(l).toBeLessThanOrEqual(1);
      const original = [0, 1, 2];
      const oneHot = targets.arraySync() as number[][];
      const partners: number[] = [];
      original.forEach((value, i) => {
        // Pixel i = l · value + (1 − l) · partner value: solve for the partner and check it is a batch image.
        const pixel = x[i]![0]![0]![0]!;
        const partner = l === 1 ? value : (pixel - l * value) / (1 - l);
        const j = Math.round(partner);
        expect(partner).toBeCloseTo(j, 4);
        partners.push(j);
        expect(t[i]![0]).toBeCloseTo(l * oneHot[i]![0]! + (1 - l) * oneHot[j]![0]!, 5);
        expect(t[i]![0]! + t[i]![1]!).toBeCloseTo(1, 5);
      });
      // The partners are a permutation of the batch.
      if (l < 1) expect([...partners].sort()).toEqual([0, 1, 2]);
      tf.dispose([mixed.x, mixed.target]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
