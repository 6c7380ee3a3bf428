import { describe, expect, it } from 'vitest';
import type { ModelManifest } from '../model/manifest.js';
import { applyServingViews, checkServingViews } from './serving-views.js';

const manifest = (extra: Partial<ModelManifest> = {}) => ({ testTimeFlip: true, ...extra }) as ModelManifest;

describe('serving views', () => {
  it('refuses bad angles, bad thresholds and a threshold without rotations, before any work', () => {
    expect(() => checkServingViews({ testTimeRotations: [0, 5] })).toThrow(/non-zero angles/);
    expect(() => checkServingViews({ testTimeRotations: [60] })).toThrow(/at most 45 degrees/);
    expect(() => checkServingViews({ testTimeRotations: [5], testTimeRotationsBelow: 0 })).toThrow(/above 0 and at most 1/);
    expect(() => checkServingViews({ testTimeRotationsBelow: 0.9 })).toThrow(/needs rotations/);
    expect(() => checkServingViews({ testTimeRotations: [], testTimeRotationsBelow: 0.9 }, [5])).toThrow(/needs rotations/);
    expect(() => checkServingViews({ testTimeRotationsBelow: 0.9 }, [-5, 5])).not.toThrow();
    expect(() => checkServingViews({})).not.toThrow();
  });

  it('replaces rotations with their threshold, keeps rotations for a threshold alone, and removes both with none', () => {
    const m = manifest({ testTimeRotations: [-10, 10], testTimeRotationsBelow: 0.5 });
    applyServingViews(m, { testTimeRotations: [-5, 5] });
    expect([m.testTimeRotations, m.testTimeRotationsBelow]).toEqual([[-5, 5], undefined]);
    applyServingViews(m, { testTimeRotationsBelow: 0.9 });
    expect([m.testTimeRotations, m.testTimeRotationsBelow]).toEqual([[-5, 5], 0.9]);
    applyServingViews(m, {});
    expect([m.testTimeRotations, m.testTimeRotationsBelow]).toEqual([[-5, 5], 0.9]);
    applyServingViews(m, { testTimeRotations: [] });
    expect([m.testTimeRotations, m.testTimeRotationsBelow]).toEqual([undefined, undefined]);
    expect(() => applyServingViews(m, { testTimeRotationsBelow: 0.9 })).toThrow(/needs rotations/);
  });
});
