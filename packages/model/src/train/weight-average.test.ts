import { describe, expect, it } from 'vitest';
import { WeightAverage } from './weight-average.js';

describe('WeightAverage', () => {
  it('follows the weights closely at first, then averages with the configured decay', () => {
    const avg = new WeightAverage(0.9, [Float32Array.of(0, 10)]);
    avg.update([Float32Array.of(1, 10)]);
    // step 0: decay min(0.9, 1/10) = 0.1, so the average moves 90% of the way.
    expect(avg.values[0]![0]).toBeCloseTo(0.9, 6);
    for (let s = 0; s < 200; s++) avg.update([Float32Array.of(1, 10)]);
    expect(avg.values[0]![0]).toBeCloseTo(1, 5);
    expect(avg.values[0]![1]).toBeCloseTo(10, 5);
    expect(WeightAverage.effectiveDecay(0.9, 1000)).toBe(0.9);
  });

  it('smooths alternating weights around their mean', () => {
    const avg = new WeightAverage(0.99, [Float32Array.of(0)]);
    for (let s = 0; s < 5000; s++) avg.update([Float32Array.of(s % 2 === 0 ? 1 : -1)]);
    expect(Math.abs(avg.values[0]![0]!)).toBeLessThan(0.02);
  });

  it('does not alias the arrays it was given and rejects mismatched shapes', () => {
    const initial = [Float32Array.of(1, 2)];
    const avg = new WeightAverage(0.5, initial);
    avg.update([Float32Array.of(3, 4)]);
    expect(initial[0]).toEqual(Float32Array.of(1, 2));
    const snap = avg.snapshot();
    avg.update([Float32Array.of(5, 6)]);
    expect(snap[0]).not.toEqual(avg.values[0]);
    expect(() => avg.update([Float32Array.of(1)])).toThrow(/expected 2 values/);
    expect(() => new WeightAverage(1, initial)).toThrow(/decay/);
  });
});
