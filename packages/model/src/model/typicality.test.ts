import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { fitTypicality, readTypicalityStats, typicalityLimit, TypicalityGauge, type TypicalityStats } from './typicality.js';

/** Seeded standard normal draws (Box–Muller on a linear congruential generator). */
function normals(seed: number): () => number {
  let state = seed;
  const uniform = () => ((state = (state * 16807) % 2147483647) / 2147483647);
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Vectors of 3 channels, the second following the first closely and the third with a spread of 2. */
function correlatedVectors(count: number, seed = 7): number[][] {
  const draw = normals(seed);
  return Array.from({ length: count }, () => {
    const a = draw();
    return [5 + a, 5 + a + 0.1 * draw(), -3 + 2 * draw()];
  });
}

/** Mahalanobis distance of one vector to the Gaussian, by hand: the reference the gauge is held to. */
function typicalityDistance(stats: TypicalityStats, vector: ArrayLike<number>): number {
  const { mean, precision } = stats;
  const channels = mean.length;
  const centred = Array.from({ length: channels }, (_, i) => (vector[i] as number) - (mean[i] as number));
  let sum = 0;
  for (let i = 0; i < channels; i++) {
    let row = 0;
    for (let j = 0; j < channels; j++) row += (precision[i * channels + j] as number) * (centred[j] as number);
    sum += (centred[i] as number) * row;
  }
  return Math.sqrt(Math.max(0, sum));
}

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('typicality statistics', () => {
  it('fit the mean and the covariance, so that distance follows the spread of each direction', () => {
    const stats = fitTypicality(correlatedVectors(4000));
    expect(stats.mean[0]).toBeCloseTo(5, 1);
    expect(stats.mean[2]).toBeCloseTo(-3, 0);
    // Along the third channel one standard deviation is 2; along the first, 1.
    expect(typicalityDistance(stats, [5, 5, -1])).toBeCloseTo(1, 1);
    expect(typicalityDistance(stats, [6, 6, -3])).toBeCloseTo(1, 1);
    // Breaking the link between the first two channels by 1 goes against a spread of about 0.07.
    expect(typicalityDistance(stats, [5, 6, -3])).toBeGreaterThan(6);
    const distances = correlatedVectors(2000, 11).map((v) => typicalityDistance(stats, v));
    const meanSquare = distances.reduce((sum, d) => sum + d * d, 0) / distances.length;
    expect(meanSquare).toBeCloseTo(3, 0);
  });

  it('give the same distances with tensors as without', () => {
    const stats = fitTypicality(correlatedVectors(500));
    const gauge = new TypicalityGauge(stats);
    const points = [[5, 5, -3], [9, 2, 40], [0, 0, 0]];
    try {
      const measured = tf.tidy(() => gauge.distances(tf.tensor2d(points)).arraySync());
      points.forEach((point, i) => expect(measured[i]).toBeCloseTo(typicalityDistance(stats, point), 2));
      expect(gauge.channels).toBe(3);
    } finally {
      gauge.dispose();
    }
  });

  it('stay finite when a channel never moves, through the ridge', () => {
    const stats = fitTypicality(correlatedVectors(200).map((v) => [...v, 0]));
    expect(stats.precision.every(Number.isFinite)).toBe(true);
    // The ridge gives the still channel a variance of 0.1% of the mean variance (1.5): 1 is 26 deviations.
    expect(typicalityDistance(stats, [5, 5, -3, 1])).toBeGreaterThan(20);
  });

  it('refuse to fit on fewer vectors than channels', () => {
    expect(() => fitTypicality([[1, 2, 3], [2, 3, 4]])).toThrow(/more feature vectors \(2\) than channels \(3\)/);
  });

  it('set the limit at a quantile of the distances, times the margin', () => {
    const distances = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    expect(typicalityLimit(distances, 0.999, 1.1)).toBeCloseTo(1100);
    expect(typicalityLimit(distances, 0.5, 1)).toBe(501);
    expect(() => typicalityLimit([], 0.9, 1)).toThrow(/at least one distance/);
  });

  it('are read back from the artifact, and refused naming the file when missing, cut short or of the wrong size', () => {
    const stats = fitTypicality(correlatedVectors(50));
    expect(readTypicalityStats({ 't.json': encode(stats) }, 't.json')).toEqual(stats);
    expect(() => readTypicalityStats({}, 't.json')).toThrow(/has no t\.json, which its manifest names/);
    expect(() => readTypicalityStats({ 't.json': encode(stats).subarray(0, 30) }, 't.json')).toThrow(/t\.json is not valid JSON/);
    expect(() => readTypicalityStats({ 't.json': encode({ ...stats, precision: stats.precision.slice(1) }) }, 't.json')).toThrow(/must hold a mean of n finite numbers and a precision of n×n/);
    expect(() => readTypicalityStats({ 't.json': encode({ ...stats, mean: [null, 1, 2] }) }, 't.json')).toThrow(/must hold a mean/);
  });
});
