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

  it('macro-averages over the classes present or predicted only, as scikit-learn does', () => {
    const classes = ['glioma', 'meningioma', 'pituitary', 'no_tumor'];
    // Perfect on a folder of glioma and no-tumour images: the two classes absent and never predicted do not count.
    const perfect = classificationMetrics([0, 0, 3, 3], [0.9, 0.05, 0.03, 0.02, 0.8, 0.1, 0.05, 0.05, 0.01, 0.01, 0.01, 0.97, 0.02, 0.02, 0.02, 0.94], classes);
    expect(perfect).toMatchObject({ accuracy: 1, precision: 1, recall: 1, f1: 1, specificity: 1 });
    // Two gliomas (one called pituitary) and a meningioma: pituitary is predicted though absent, and counts
    // with recall 0; no_tumor, neither present nor predicted, does not.
    const one = (c: number) => classes.map((_, k) => (k === c ? 0.7 : 0.1));
    const m = classificationMetrics([0, 0, 1], [...one(0), ...one(2), ...one(1)], classes);
    expect(m.recall).toBeCloseTo((1 / 2 + 1 + 0) / 3);
    expect(m.precision).toBeCloseTo((1 + 1 + 0) / 3);
    expect(m.f1).toBeCloseTo((2 / 3 + 1 + 0) / 3);
    expect(m.specificity).toBeCloseTo((1 + 1 + 2 / 3) / 3);
  });

  it('leaves specificity unmeasured (NaN, null in JSON) when there are no negatives', () => {
    const tumoursOnly = classificationMetrics([0, 0, 0], [0.9, 0.1, 0.8, 0.2, 0.95, 0.05], ['tumor', 'no_tumor'], 'tumor');
    expect(tumoursOnly).toMatchObject({ accuracy: 1, recall: 1, precision: 1 });
    expect(tumoursOnly.specificity).toBeNaN();
    expect(JSON.parse(JSON.stringify(tumoursOnly))).toMatchObject({ specificity: null });
    // Healthy scans alone measure it.
    expect(classificationMetrics([1, 1], [0.2, 0.8, 0.1, 0.9], ['tumor', 'no_tumor'], 'tumor').specificity).toBe(1);
    // Several classes: one class throughout, called so, leaves no class with negatives.
    expect(classificationMetrics([1, 1], [0.1, 0.9, 0.2, 0.8], ['a', 'b']).specificity).toBeNaN();
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
