import { describe, expect, it } from 'vitest';
import { decidePromotion, gateMetrics, tumourSensitivity } from './promotion-gate.js';

describe('tumourSensitivity', () => {
  it('is the recall of tumor for the binary task', () => {
    // 8 tumours, 6 found; 10 negatives.
    expect(tumourSensitivity(['tumor', 'no_tumor'], [[6, 2], [1, 9]])).toBeCloseTo(0.75);
  });

  it('counts a tumour called by the wrong type as found', () => {
    const classes = ['glioma', 'meningioma', 'pituitary', 'no_tumor'];
    const confusion = [
      [5, 3, 0, 2], // 10 gliomas, 2 missed
      [0, 10, 0, 0],
      [0, 0, 9, 1], // 10 pituitary, 1 missed
      [1, 0, 0, 9],
    ];
    expect(tumourSensitivity(classes, confusion)).toBeCloseTo(27 / 30);
  });

  it('is unmeasured (null), not 0, on a set without tumour images', () => {
    expect(tumourSensitivity(['tumor', 'no_tumor'], [[0, 0], [3, 7]])).toBeNull();
  });
});

describe('gateMetrics', () => {
  it('averages recall over the classes present', () => {
    const metrics = gateMetrics(['tumor', 'no_tumor'], {
      n: 18,
      accuracy: 15 / 18,
      perClass: { tumor: { recall: 0.75, support: 8 }, no_tumor: { recall: 0.9, support: 10 } },
      confusion: [[6, 2], [1, 9]],
    });
    expect(metrics).toEqual({ n: 18, accuracy: 15 / 18, sensitivity: 0.75, macroRecall: expect.closeTo(0.825, 6) });
  });

  it('leaves out a class without images, whose recall is null, and measures no sensitivity without tumours', () => {
    const metrics = gateMetrics(['tumor', 'no_tumor'], {
      n: 10,
      accuracy: 0.7,
      perClass: { tumor: { recall: null, support: 0 }, no_tumor: { recall: 0.7, support: 10 } },
      confusion: [[0, 0], [3, 7]],
    });
    expect(metrics).toEqual({ n: 10, accuracy: 0.7, sensitivity: null, macroRecall: 0.7 });
  });
});

describe('decidePromotion', () => {
  const baseline = { n: 100, accuracy: 0.9, sensitivity: 0.92, macroRecall: 0.9 };

  it('promotes a candidate at least as good on both measures', () => {
    expect(decidePromotion({ ...baseline }, baseline)).toEqual({ promote: true, reasons: [] });
    expect(decidePromotion({ ...baseline, accuracy: 0.95 }, baseline).promote).toBe(true);
  });

  it('refuses a candidate that loses sensitivity, even with better accuracy, and says why', () => {
    const decision = decidePromotion({ ...baseline, accuracy: 0.95, sensitivity: 0.85 }, baseline);
    expect(decision.promote).toBe(false);
    expect(decision.reasons).toEqual(['sensitivity 85.0% is below the promoted model\'s 92.0%']);
  });

  it('lists every measure that fell', () => {
    expect(decidePromotion({ ...baseline, accuracy: 0.5, sensitivity: 0.5 }, baseline).reasons).toHaveLength(2);
  });

  it('accepts a drop within the tolerance', () => {
    expect(decidePromotion({ ...baseline, accuracy: 0.89 }, baseline, 0.02).promote).toBe(true);
  });

  it('promotes when there is nothing to compare with', () => {
    expect(decidePromotion(baseline, null).promote).toBe(true);
    expect(decidePromotion({ ...baseline, sensitivity: null }, null).promote).toBe(true);
  });

  it('refuses, saying so, when the set cannot measure a compared rate, rather than reading it as 0', () => {
    const noTumours = { n: 100, accuracy: 0.9, sensitivity: null, macroRecall: 0.9 };
    const reason = 'sensitivity was not measured: the evaluation set has no tumour image to measure it on, so the candidate cannot be shown as good as the promoted model';
    expect(decidePromotion(noTumours, noTumours)).toEqual({ promote: false, reasons: [reason] });
    // A worse accuracy is still named beside it.
    expect(decidePromotion({ ...noTumours, accuracy: 0.5 }, noTumours).reasons).toEqual(["accuracy 50.0% is below the promoted model's 90.0%", reason]);
  });
});
