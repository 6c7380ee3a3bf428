import { describe, expect, it } from 'vitest';
import { detectionProbabilities } from './evaluate.js';

describe('detectionProbabilities', () => {
  it('sums every class but no_tumor into the tumour probability, image by image', () => {
    const classes = ['glioma', 'meningioma', 'no_tumor', 'pituitary'];
    const out = detectionProbabilities(Float32Array.from([0.1, 0.2, 0.3, 0.4, 0, 0, 1, 0]), classes);
    expect(Array.from(out)).toEqual([expect.closeTo(0.7, 6), expect.closeTo(0.3, 6), 0, 1]);
  });

  it('refuses a model without a no_tumor class', () => {
    expect(() => detectionProbabilities(Float32Array.from([0.5, 0.5]), ['a', 'b'])).toThrow(/no no_tumor class/);
  });
});
