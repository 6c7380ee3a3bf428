import { describe, expect, it } from 'vitest';
import { fitTemperature, temperProbabilities } from './temperature.js';

/** A seeded uniform generator in [0, 1). */
function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function softmax(z: number[]): number[] {
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/**
 * A model that reports softmax(z) while the truth is drawn from softmax(z / trueTemperature): it is
 * over-confident when trueTemperature > 1, under-confident when < 1.
 */
function miscalibrated(count: number, classes: number, trueTemperature: number, seed: number): { probabilities: Float32Array; actual: number[] } {
  const rand = uniform(seed);
  const probabilities = new Float32Array(count * classes);
  const actual: number[] = [];
  for (let i = 0; i < count; i++) {
    const z = Array.from({ length: classes }, () => (rand() - 0.5) * 8);
    probabilities.set(softmax(z), i * classes);
    const truth = softmax(z.map((v) => v / trueTemperature));
    let u = rand();
    let c = 0;
    while (c < classes - 1 && u >= truth[c]!) u -= truth[c++]!;
    actual.push(c);
  }
  return { probabilities, actual };
}

describe('temperature scaling', () => {
  it.each([
    [2, 3],
    [0.5, 3],
    [1.5, 2],
  ])('recovers a true temperature of %f with %i classes', (trueTemperature, classes) => {
    const { probabilities, actual } = miscalibrated(6000, classes, trueTemperature, 7);
    const fit = fitTemperature(probabilities, actual, classes);
    expect(fit.temperature).toBeGreaterThan(trueTemperature * 0.9);
    expect(fit.temperature).toBeLessThan(trueTemperature * 1.1);
    expect(fit.nllAfter).toBeLessThan(fit.nllBefore);
  });

  it('leaves probabilities alone at T = 1 and keeps every argmax at other temperatures', () => {
    const { probabilities } = miscalibrated(200, 4, 1, 3);
    const same = temperProbabilities(probabilities, 4, 1);
    same.forEach((p, i) => expect(p).toBeCloseTo(probabilities[i]!, 6));
    for (const temperature of [0.3, 2.5]) {
      const tempered = temperProbabilities(probabilities, 4, temperature);
      for (let row = 0; row < 200; row++) {
        const before = Array.from(probabilities.subarray(row * 4, row * 4 + 4));
        const after = Array.from(tempered.subarray(row * 4, row * 4 + 4));
        expect(after.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        expect(after.indexOf(Math.max(...after))).toBe(before.indexOf(Math.max(...before)));
      }
    }
  });

  it('softens at T > 1 and sharpens at T < 1', () => {
    const p = new Float32Array([0.9, 0.1]);
    expect(temperProbabilities(p, 2, 2)[0]).toBeCloseTo(0.75, 5); // 3 / (3 + 1)
    expect(temperProbabilities(p, 2, 0.5)[0]).toBeCloseTo(81 / 82, 5);
  });

  it('refuses a non-positive temperature and mismatched inputs', () => {
    expect(() => temperProbabilities(new Float32Array([0.5, 0.5]), 2, 0)).toThrow(/positive/);
    expect(() => fitTemperature(new Float32Array([0.5, 0.5, 0.2]), [0], 2)).toThrow(/count × classes/);
    expect(() => fitTemperature(new Float32Array(0), [], 2)).toThrow(/non-empty/);
  });
});
