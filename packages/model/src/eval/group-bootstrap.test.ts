import { describe, expect, it } from 'vitest';
import { groupBootstrapInterval } from './group-bootstrap.js';

describe('accuracy interval by resampling near-duplicate groups', () => {
  it('is a single point when every image is right', () => {
    expect(groupBootstrapInterval([{ size: 3, right: 3 }, { size: 1, right: 1 }])).toEqual([1, 1]);
  });

  it('matches the normal approximation for images without copies', () => {
    // 400 lone images, 360 right: 90% ± 1.96 × sqrt(0.9 × 0.1 / 400) = 90% ± 2.94%.
    const groups = Array.from({ length: 400 }, (_, i) => ({ size: 1, right: i < 360 ? 1 : 0 }));
    const [lo, hi] = groupBootstrapInterval(groups);
    expect(lo).toBeCloseTo(0.9 - 0.0294, 2);
    expect(hi).toBeCloseTo(0.9 + 0.0294, 2);
  });

  it('is wider when the errors come as copies of one scan', () => {
    // The same 400 images and 40 errors, but the errors are 4 scans copied 10 times each.
    const lone = Array.from({ length: 400 }, (_, i) => ({ size: 1, right: i < 360 ? 1 : 0 }));
    const copied = [...Array.from({ length: 360 }, () => ({ size: 1, right: 1 })), ...Array.from({ length: 4 }, () => ({ size: 10, right: 0 }))];
    const width = ([lo, hi]: [number, number]) => hi - lo;
    expect(width(groupBootstrapInterval(copied))).toBeGreaterThan(2 * width(groupBootstrapInterval(lone)));
  });

  it('gives the same interval for the same seed', () => {
    const groups = [{ size: 2, right: 1 }, { size: 5, right: 5 }, { size: 1, right: 0 }];
    expect(groupBootstrapInterval(groups, { seed: 3 })).toEqual(groupBootstrapInterval(groups, { seed: 3 }));
    expect(() => groupBootstrapInterval(groups, { level: 1 })).toThrow(/level/);
  });
});
