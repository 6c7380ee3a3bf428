import { describe, expect, it } from 'vitest';
import { classificationMetrics, confusionMatrix, expectedCalibrationError, rocAuc } from './metrics.js';

describe('classification metrics', () => {
  // Binary, classes [tumor, no_tumor]: 4 tumours (3 found), 4 healthy (1 false alarm).
  const actual = [0, 0, 0, 0, 1, 1, 1, 1];
  const pTumor = [0.9, 0.8, 0.7, 0.4, 0.6, 0.3, 0.2, 0.1];
  const probs = pTumor.flatMap((p) => [p, 1 - p]);

  it('computes the binary rates of the positive class by hand', () => {
    const m = classificationMetrics(actual, probs, ['tumor', 'no_tumor'], 'tumor');
    expect(m.confusion).toEqual([
      [3, 1],
      [1, 3],
    ]);
    expect(m.accuracy).toBeCloseTo(6 / 8);
    expect(m.precision).toBeCloseTo(3 / 4);
    expect(m.recall).toBeCloseTo(3 / 4);
    expect(m.specificity).toBeCloseTo(3 / 4);
    expect(m.f1).toBeCloseTo(3 / 4);
    // Pairs (tumour score > healthy score): 0.9,0.8,0.7 beat all 4; 0.4 beats 0.3,0.2,0.1 → 15/16.
    expect(m.auc).toBeCloseTo(15 / 16);
  });

  it('macro-averages and fills the confusion matrix for several classes', () => {
    const m = classificationMetrics([0, 1, 2, 2], [0.8, 0.1, 0.1, 0.1, 0.7, 0.2, 0.6, 0.2, 0.2, 0.1, 0.1, 0.8], ['a', 'b', 'c']);
    expect(m.confusion).toEqual([
      [1, 0, 0],
      [0, 1, 0],
      [1, 0, 1],
    ]);
    expect(m.perClass.a).toMatchObject({ precision: 0.5, recall: 1, support: 1 });
    expect(m.perClass.c).toMatchObject({ precision: 1, recall: 0.5, support: 2 });
    expect(m.recall).toBeCloseTo((1 + 1 + 0.5) / 3);
    expect(m.auc).toBeUndefined();
  });

  it('macro-averages over the classes present or predicted only, each rate over the classes it is measured for', () => {
    const classes = ['glioma', 'meningioma', 'pituitary', 'no_tumor'];
    // Perfect on a folder of glioma and no-tumour images: the two classes absent and never predicted do not count.
    const perfect = classificationMetrics([0, 0, 3, 3], [0.9, 0.05, 0.03, 0.02, 0.8, 0.1, 0.05, 0.05, 0.01, 0.01, 0.01, 0.97, 0.02, 0.02, 0.02, 0.94], classes);
    expect(perfect).toMatchObject({ accuracy: 1, precision: 1, recall: 1, f1: 1, specificity: 1 });
    expect(perfect.perClass.meningioma).toEqual({ precision: null, recall: null, f1: null, specificity: 1, support: 0 });
    // Two gliomas (one called pituitary) and a meningioma: pituitary, predicted once though absent, has
    // precision 0 and F1 0 (2·0 / (0 + 1 + 0)), which count, and no recall, which the average leaves out;
    // no_tumor, neither present nor predicted, does not count at all.
    const one = (c: number) => classes.map((_, k) => (k === c ? 0.7 : 0.1));
    const m = classificationMetrics([0, 0, 1], [...one(0), ...one(2), ...one(1)], classes);
    expect(m.perClass.pituitary).toEqual({ precision: 0, recall: null, f1: 0, specificity: 2 / 3, support: 0 });
    expect(m.recall).toBeCloseTo((1 / 2 + 1) / 2);
    expect(m.precision).toBeCloseTo((1 + 1 + 0) / 3);
    expect(m.f1).toBeCloseTo((2 / 3 + 1 + 0) / 3);
    expect(m.specificity).toBeCloseTo((1 + 1 + 2 / 3) / 3);
  });

  it('leaves the rates of a set of positives only unmeasured (null), not 0', () => {
    // Three tumours, one called healthy; no healthy scan: tumor has no negatives, no_tumor no images.
    const tumoursOnly = classificationMetrics([0, 0, 0], [0.9, 0.1, 0.3, 0.7, 0.95, 0.05], ['tumor', 'no_tumor'], 'tumor');
    expect(tumoursOnly.confusion).toEqual([
      [2, 1],
      [0, 0],
    ]);
    expect(tumoursOnly.perClass.tumor).toEqual({ precision: 1, recall: 2 / 3, f1: 0.8, specificity: null, support: 3 });
    // no_tumor was called once, wrongly: precision 0 and F1 2·0 / (0 + 1 + 0) = 0 are measured; its recall is not.
    expect(tumoursOnly.perClass.no_tumor).toEqual({ precision: 0, recall: null, f1: 0, specificity: 2 / 3, support: 0 });
    expect(tumoursOnly).toMatchObject({ accuracy: 2 / 3, precision: 1, recall: 2 / 3, f1: 0.8, specificity: null, auc: null });
    // JSON keeps every key, with null where nothing measured.
    expect(JSON.parse(JSON.stringify(tumoursOnly))).toMatchObject({ specificity: null, auc: null, perClass: { no_tumor: { recall: null } } });
    // Healthy scans alone measure specificity.
    expect(classificationMetrics([1, 1], [0.2, 0.8, 0.1, 0.9], ['tumor', 'no_tumor'], 'tumor')).toMatchObject({ specificity: 1, precision: null, recall: null, f1: null });
    // Several classes: one class throughout, called so, leaves no class with negatives.
    expect(classificationMetrics([1, 1], [0.1, 0.9, 0.2, 0.8], ['a', 'b']).specificity).toBeNull();
  });

  it('leaves the precision of a class never predicted unmeasured, and out of the average', () => {
    // a: 2 images, both called a; b: 1, called a; c: 1, called c. Nothing is called b.
    const m = classificationMetrics([0, 0, 1, 2], [0.8, 0.1, 0.1, 0.7, 0.2, 0.1, 0.6, 0.3, 0.1, 0.1, 0.1, 0.8], ['a', 'b', 'c']);
    expect(m.confusion).toEqual([
      [2, 0, 0],
      [1, 0, 0],
      [0, 0, 1],
    ]);
    expect(m.perClass.a).toEqual({ precision: 2 / 3, recall: 1, f1: 0.8, specificity: 1 / 2, support: 2 });
    // b: recall 0 of 1, F1 2·0 / (0 + 0 + 1) = 0; its precision has no denominator.
    expect(m.perClass.b).toEqual({ precision: null, recall: 0, f1: 0, specificity: 1, support: 1 });
    expect(m.precision).toBeCloseTo((2 / 3 + 1) / 2);
    expect(m.recall).toBeCloseTo((1 + 0 + 1) / 3);
    expect(m.f1).toBeCloseTo((0.8 + 0 + 1) / 3);
    // The binary detector that calls every scan healthy: its tumour precision is unmeasured, its recall 0.
    const blind = classificationMetrics([0, 1], [0.2, 0.8, 0.1, 0.9], ['tumor', 'no_tumor'], 'tumor');
    expect(blind).toMatchObject({ precision: null, recall: 0, f1: 0, specificity: 1, auc: 1 });
  });

  it('counts ties as one half in the AUC', () => {
    expect(rocAuc([0.5, 0.5], [true, false])).toBeCloseTo(0.5);
    expect(rocAuc([0.2, 0.9, 0.9, 0.1], [false, true, false, false])).toBeCloseTo((1 + 0.5 + 1) / 3);
  });

  it('measures calibration error as the weighted gap between confidence and accuracy', () => {
    expect(expectedCalibrationError([0.95, 0.95], [true, true])).toBeCloseTo(0.05);
    expect(expectedCalibrationError([0.55, 0.55, 0.95, 0.95], [true, false, true, true])).toBeCloseTo(0.5 * 0.05 + 0.5 * 0.05);
  });

  it('builds a confusion matrix of actual × predicted', () => {
    expect(confusionMatrix([0, 1, 1], [1, 1, 0], 2)).toEqual([
      [0, 1],
      [1, 1],
    ]);
  });
});
