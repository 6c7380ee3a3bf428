import { describe, expect, it } from 'vitest';
import type { Prediction } from '@btd/model';
import { analysisTimings, roundedTimings, type TimedPrediction } from './job-timings.js';

/** A prediction that had these timings and reached the job at `endedAt`. */
function at(endedAt: number, timings: Prediction['timings']): TimedPrediction {
  return { prediction: { label: 'x', probabilities: {}, box: null, timings }, endedAt };
}

describe('analysisTimings', () => {
  it('adds up the parts of models run one after the other', () => {
    const binary = at(145, { preprocessMs: 10, modelMs: 30, heatmapMs: 5 });
    const type = at(200, { preprocessMs: 0.5, modelMs: 50, heatmapMs: 0 });
    expect(analysisTimings([binary, type])).toEqual({ preprocessMs: 10.5, modelMs: 80, heatmapMs: 5 });
  });

  it('counts each moment once for models run side by side, so the parts add up to no more than they lasted', () => {
    // Both from 100 ms: one shared preprocessing of 10 ms, then the forward passes side by side;
    // the binary model's heatmap falls while the type model's passes still run.
    const binary = at(145, { preprocessMs: 10, modelMs: 30, heatmapMs: 5 });
    const type = at(170, { preprocessMs: 10, modelMs: 60, heatmapMs: 0 });
    const parts = analysisTimings([binary, type]);
    expect(parts).toEqual({ preprocessMs: 10, modelMs: 60, heatmapMs: 0 });
    expect(parts.preprocessMs + parts.modelMs + parts.heatmapMs).toBe(170 - 100);
  });

  it('counts a heatmap drawn after the last forward pass as heatmap time', () => {
    // The binary model's passes (145 to 175) began late, after a wait for a busy thread, and end
    // after the type model's (110 to 170); its heatmap runs from 175 to 180.
    const binary = at(180, { preprocessMs: 10, modelMs: 30, heatmapMs: 5 });
    const type = at(170, { preprocessMs: 10, modelMs: 60, heatmapMs: 0 });
    expect(analysisTimings([binary, type])).toEqual({ preprocessMs: 10, modelMs: 65, heatmapMs: 5 });
  });
});

describe('roundedTimings', () => {
  it('rounds each part down and the total up to 0.1 ms, so the parts never exceed the total', () => {
    const measured = { downloadMs: 2.06, preprocessMs: 3.09, modelMs: 20.04, heatmapMs: 1.01, uploadMs: 3.8, totalMs: 30 };
    expect(roundedTimings(measured)).toEqual({ downloadMs: 2, preprocessMs: 3, modelMs: 20, heatmapMs: 1, uploadMs: 3.8, totalMs: 30 });
    expect(roundedTimings({ ...measured, totalMs: 29.99 }).totalMs).toBe(30);
    expect(roundedTimings({ ...measured, totalMs: 30.01 }).totalMs).toBe(30.1);
  });
});
