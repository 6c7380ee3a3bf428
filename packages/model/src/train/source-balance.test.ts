import { describe, expect, it } from 'vitest';
import { sourceBalancedWeights } from './source-balance.js';

describe('source-balanced loss weights', () => {
  // Images 0-3 main (class weights 1, 1); 4-8 extra: four of class 0, one of class 1; 9 extra with a coarse label.
  const labels = Int32Array.from([0, 0, 1, 1, 0, 0, 0, 0, 1, -1]);
  const extra = [4, 5, 6, 7, 8, 9];

  it('balances the extra images among themselves and leaves the main images alone', () => {
    const w = sourceBalancedWeights(labels, [1, 1], extra);
    expect(Array.from(w.slice(0, 4))).toEqual([1, 1, 1, 1]);
    // 5 labelled extra images, 2 classes: 5 / (2 * 4) for class 0 and 5 / (2 * 1) for class 1.
    expect(Array.from(w.slice(4, 8))).toEqual([0.625, 0.625, 0.625, 0.625]);
    expect(w[8]).toBe(2.5);
    // The extra source's classes then weigh the same in total.
    expect(4 * w[4]!).toBeCloseTo(w[8]!, 6);
    expect(w[9]).toBe(1);
  });

  it('divides by the main class weight, since the two multiply in the loss', () => {
    const w = sourceBalancedWeights(labels, [0.5, 2], extra);
    expect(w[4]! * 0.5).toBeCloseTo(0.625, 6);
    expect(w[8]! * 2).toBeCloseTo(2.5, 6);
  });

  it('gives a class the main images lack the extra source weight as it is', () => {
    const w = sourceBalancedWeights(labels, [1, 0], extra);
    expect(w[8]).toBe(2.5);
  });
});
