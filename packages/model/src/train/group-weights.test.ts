import { describe, expect, it } from 'vitest';
import { groupBalancedWeights } from './group-weights.js';

describe('group-balanced loss weights', () => {
  // Images 0-3 class 0: a group of three (0, 1, 2) and a single (3); images 4-5 class 1, one group each; 6 is not training.
  const labels = Int32Array.from([0, 0, 0, 0, 1, 1, 0]);
  const groups = [7, 7, 7, 8, 9, 10, 7];

  it('makes each group weigh as one image, keeping each class total at its image count', () => {
    const w = groupBalancedWeights(labels, (i) => groups[i], [0, 1, 2, 3, 4, 5]);
    // Class 0: raw weights 1/3, 1/3, 1/3, 1 (sum 2), scaled by 4 / 2.
    expect(Array.from(w.slice(0, 4))).toEqual([2 / 3, 2 / 3, 2 / 3, 2].map(Math.fround));
    expect(w[0]! + w[1]! + w[2]!).toBeCloseTo(w[3]!, 6);
    expect(Array.from(w.slice(4, 6))).toEqual([1, 1]);
    // Not in training: weight 1, and it does not count towards its group's size.
    expect(w[6]).toBe(1);
  });

  it('gives images without a group (extra training data) weight 1', () => {
    const w = groupBalancedWeights(labels, (i) => (i === 3 ? undefined : groups[i]), [0, 1, 2, 3, 4, 5]);
    expect(w[3]).toBe(1);
    expect(Array.from(w.slice(0, 3))).toEqual([1, 1, 1]);
  });
});
