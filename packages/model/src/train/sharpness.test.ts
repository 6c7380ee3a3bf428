import { describe, expect, it } from 'vitest';
import { sharpnessProbe } from './sharpness.js';

describe('sharpnessProbe', () => {
  const weights = [Float32Array.from([1, 2]), Float32Array.from([3])];

  it('moves the weights by rho along the share-weighted mean gradient', () => {
    // Worker 0 (three quarters of the batch) and worker 1: mean gradient (3, 0, 4), norm 5.
    const grads = [
      [Float32Array.from([4, 0]), Float32Array.from([4])],
      [Float32Array.from([0, 0]), Float32Array.from([4])],
    ];
    const out = [new Float32Array(2), new Float32Array(1)];
    const norm = sharpnessProbe(weights, grads, [0.75, 0.25], 0.5, out);
    expect(norm).toBeCloseTo(5, 6);
    expect(Array.from(out[0] as Float32Array)).toEqual([1 + 0.5 * (3 / 5), 2].map(Math.fround));
    expect((out[1] as Float32Array)[0]).toBeCloseTo(3 + 0.5 * (4 / 5), 6);
    const moved = Math.hypot(...out.flatMap((o, k) => Array.from(o, (v, i) => v - (weights[k] as Float32Array)[i]!)));
    expect(moved).toBeCloseTo(0.5, 6);
  });

  it('leaves the weights where they are when the gradient is zero', () => {
    const zero = [[new Float32Array(2), new Float32Array(1)]];
    const out = [new Float32Array(2), new Float32Array(1)];
    expect(sharpnessProbe(weights, zero, [1], 0.05, out)).toBe(0);
    expect(out.map((o) => Array.from(o))).toEqual([[1, 2], [3]]);
  });
});
