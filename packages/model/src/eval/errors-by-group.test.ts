import { describe, expect, it } from 'vitest';
import { errorsByGroup } from './errors-by-group.js';

describe('errors by near-duplicate group', () => {
  const classes = ['tumor', 'no_tumor'];
  // Six images: a healthy scan with three copies (all called tumours), a tumour with two copies
  // (one missed), and a lone healthy scan called healthy.
  const relPaths = ['no/c.jpg', 'no/a.jpg', 'no/b.jpg', 'yes/y2.jpg', 'yes/y1.jpg', 'no/z.jpg'];
  const actual = [1, 1, 1, 0, 0, 1];
  const pTumor = [0.9, 0.8, 0.7, 0.4, 0.6, 0.1];
  const probabilities = pTumor.flatMap((p) => [p, 1 - p]);
  const groupOf = [0, 0, 0, 3, 3, 5];

  it('counts each group once, by the share of its images predicted right', () => {
    const { byGroup } = errorsByGroup(relPaths, actual, probabilities, classes, groupOf);
    expect(byGroup.groups).toBe(3);
    expect(byGroup.groupsWithErrors).toBe(2);
    expect(byGroup.accuracy).toBeCloseTo((0 + 1 / 2 + 1) / 3);
    // Plain accuracy is 2 of 6; the resampled interval holds it and stays within [0, 1].
    const [lo, hi] = byGroup.accuracyInterval;
    expect(lo).toBeLessThanOrEqual(2 / 6);
    expect(hi).toBeGreaterThanOrEqual(2 / 6);
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThanOrEqual(1);
  });

  it('lists every wrong image with its group, largest groups first', () => {
    const { misclassified } = errorsByGroup(relPaths, actual, probabilities, classes, groupOf);
    expect(misclassified.map((m) => m.relPath)).toEqual(['no/a.jpg', 'no/b.jpg', 'no/c.jpg', 'yes/y2.jpg']);
    expect(misclassified[0]).toEqual({ relPath: 'no/a.jpg', actual: 'no_tumor', predicted: 'tumor', probability: expect.closeTo(0.8, 6), group: 'no/a.jpg', groupSize: 3 });
    expect(misclassified[3]).toMatchObject({ actual: 'tumor', predicted: 'no_tumor', group: 'yes/y1.jpg', groupSize: 2 });
    expect(misclassified[3]!.probability).toBeCloseTo(0.6);
  });

  it('equals plain accuracy when no image has a copy', () => {
    const lone = relPaths.map((_, i) => i);
    const { byGroup, misclassified } = errorsByGroup(relPaths, actual, probabilities, classes, lone);
    expect(byGroup.groups).toBe(6);
    expect(byGroup.accuracy).toBeCloseTo(2 / 6);
    expect(misclassified).toHaveLength(4);
  });

  it('refuses inputs of different lengths', () => {
    expect(() => errorsByGroup(relPaths.slice(1), actual, probabilities, classes, groupOf)).toThrow(/expected 6 paths/);
  });
});
