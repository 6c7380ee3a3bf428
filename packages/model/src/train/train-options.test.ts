import { describe, expect, it } from 'vitest';
import { InvalidOptionsError } from './invalid-options.error.js';
import { checkTrainOptions } from './train-options.js';

describe('checkTrainOptions', () => {
  it('takes a whole contrast limit for local contrast equalisation, the only kind a manifest records and sharp takes', () => {
    expect(() => checkTrainOptions({ claheMaxSlope: 3 })).not.toThrow();
    expect(() => checkTrainOptions({ claheMaxSlope: 0 })).not.toThrow();
    for (const slope of [2.5, -1, 101, Number.NaN]) {
      expect(() => checkTrainOptions({ claheMaxSlope: slope })).toThrow(InvalidOptionsError);
    }
  });
});
