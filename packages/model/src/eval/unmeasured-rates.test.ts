import { describe, expect, it } from 'vitest';
import { classificationMetrics } from './metrics.js';
import { percent, unmeasuredRateNotes } from './unmeasured-rates.js';

describe('percent', () => {
  it('shows a rate nothing measured as a dash, whether null (read back from JSON) or NaN', () => {
    expect([percent(0.975), percent(0), percent(null), percent(undefined), percent(Number.NaN), percent(1 / 3, 2)]).toEqual(['97.5%', '0.0%', '–', '–', '–', '33.33%']);
  });
});

describe('unmeasuredRateNotes', () => {
  it('says why the rates of a set of tumours only are unmeasured', () => {
    // Three tumours, one called healthy.
    const m = classificationMetrics([0, 0, 0], [0.9, 0.1, 0.3, 0.7, 0.95, 0.05], ['tumor', 'no_tumor'], 'tumor');
    const notes = ['specificity and AUC: every image is `tumor`, so none is a negative to measure them on.', 'recall of `no_tumor`: no image is of that class.'];
    expect(unmeasuredRateNotes(m)).toEqual(notes);
    // The same from the record a manifest keeps.
    expect(unmeasuredRateNotes(JSON.parse(JSON.stringify(m)) as typeof m)).toEqual(notes);
  });

  it('names the classes never predicted, and says the averages leave them out', () => {
    // a: 2 images called a; b: 1, called a; c: 1, called c; d: none, never called.
    const row = (c: number) => [0, 1, 2, 3].map((k) => (k === c ? 0.7 : 0.1));
    const m = classificationMetrics([0, 0, 1, 2], [...row(0), ...row(0), ...row(0), ...row(2)], ['a', 'b', 'c', 'd']);
    expect(unmeasuredRateNotes(m)).toEqual([
      'precision of `b`: no image was called so.',
      '`d`: no image is of that class or was called so.',
      'The averages leave out the classes a rate is not measured for.',
    ]);
  });

  it('has nothing to say when every rate was measured', () => {
    const actual = [0, 0, 1, 1];
    expect(unmeasuredRateNotes(classificationMetrics(actual, [0.9, 0.1, 0.4, 0.6, 0.2, 0.8, 0.3, 0.7], ['tumor', 'no_tumor'], 'tumor'))).toEqual([]);
  });
});
