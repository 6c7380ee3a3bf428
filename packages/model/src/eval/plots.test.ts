import { describe, expect, it } from 'vitest';
import { trainingCurvesSvg, type HistoryPoint } from './plots.js';

const epochs = [1, 2, 3];

describe('trainingCurvesSvg', () => {
  it('draws training and validation curves when a run has validation images', async () => {
    const history: HistoryPoint[] = epochs.map((epoch) => ({ epoch, loss: 1 / epoch, accuracy: 0.8, valLoss: 1.2 / epoch, valAccuracy: 0.7 }));
    const svg = await trainingCurvesSvg(history);
    expect(svg).toContain('>train<');
    expect(svg).toContain('>validation<');
  });

  it('draws training curves only when validation is missing, in memory (NaN) or saved (null)', async () => {
    const saved = JSON.parse(
      JSON.stringify(epochs.map((epoch) => ({ epoch, loss: 1 / epoch, accuracy: 0.8, valLoss: Number.NaN, valAccuracy: Number.NaN }))),
    ) as HistoryPoint[];
    expect(saved[0]?.valLoss).toBeNull();
    for (const history of [saved, saved.map((h) => ({ ...h, valLoss: Number.NaN, valAccuracy: Number.NaN }))]) {
      const svg = await trainingCurvesSvg(history);
      expect(svg).toContain('>train<');
      expect(svg).not.toContain('>validation<');
      expect(svg).not.toContain('NaN');
    }
  });
});
