import { describe, expect, it } from 'vitest';
import type { Prediction } from '@btd/model';
import type { ServedModel } from './model-provider.js';
import { resultSummary, taskResultDocument, tumorProbability, type TaskOutcome } from './result-documents.js';

function outcome(task: 'tumor-binary' | 'tumor-type', prediction: Partial<Prediction>): TaskOutcome {
  const model = { task, version: `${task}-v3`, contentHash: 'ab'.repeat(32), manifest: { name: `${task}-net`, classes: Object.keys(prediction.probabilities ?? {}) } };
  const full: Prediction = {
    label: 'x',
    probabilities: {},
    box: null,
    timings: { preprocessMs: 1, modelMs: 2, heatmapMs: 0 },
    ...prediction,
  };
  return { model: model as unknown as ServedModel, prediction: full };
}

const binary = outcome('tumor-binary', {
  label: 'tumor',
  probabilities: { tumor: 0.8, no_tumor: 0.2 },
  box: { x: 10, y: 20, width: 30, height: 40 },
  heatmap: { width: 2, height: 2, data: new Float32Array(4) },
  timings: { preprocessMs: 3, modelMs: 10, heatmapMs: 4 },
});
const type = outcome('tumor-type', {
  label: 'glioma',
  probabilities: { glioma: 0.7, meningioma: 0.1, pituitary: 0.1, no_tumor: 0.1 },
  timings: { preprocessMs: 2, modelMs: 5, heatmapMs: 0 },
});

describe('tumorProbability', () => {
  it('reads the tumor class, or the complement of no_tumor', () => {
    expect(tumorProbability({ tumor: 0.3, no_tumor: 0.7 })).toBe(0.3);
    expect(tumorProbability({ lesion: 0.25, no_tumor: 0.75 })).toBe(0.25);
    expect(() => tumorProbability({ a: 1 })).toThrow(/neither/);
  });
});

describe('resultSummary', () => {
  it("combines both models, with the job's timings to 0.1 ms: each part rounded down, the total up", () => {
    const summary = resultSummary(binary, type, { downloadMs: 1.26, preprocessMs: 5, modelMs: 15.04, heatmapMs: 4, uploadMs: 7, totalMs: 40.04 });
    expect(summary).toEqual({
      label: 'tumor',
      tumorProbability: 0.8,
      probabilities: { tumor: 0.8, no_tumor: 0.2 },
      typeLabel: 'glioma',
      typeProbabilities: type.prediction.probabilities,
      box: { x: 10, y: 20, width: 30, height: 40 },
      models: [
        { task: 'tumor-binary', name: 'tumor-binary-net', version: 'tumor-binary-v3' },
        { task: 'tumor-type', name: 'tumor-type-net', version: 'tumor-type-v3' },
      ],
      timings: { downloadMs: 1.2, preprocessMs: 5, modelMs: 15, heatmapMs: 4, uploadMs: 7, totalMs: 40.1 },
    });
  });
});

describe('taskResultDocument', () => {
  it('records the model and prediction, without heatmap values', () => {
    const job = { studyId: 's', imageId: 'i', clientId: 'c', objectKey: 'originals/c/s/i' };
    const document = taskResultDocument(job, binary, '2026-01-01T00:00:00.000Z');
    expect(document).toMatchObject({ studyId: 's', imageId: 'i', task: 'tumor-binary', label: 'tumor', peak: null });
    expect(document.model).toEqual({ name: 'tumor-binary-net', version: 'tumor-binary-v3', contentHash: 'ab'.repeat(32), classes: ['tumor', 'no_tumor'] });
    expect(JSON.stringify(document)).not.toContain('"heatmap"');
  });
});
