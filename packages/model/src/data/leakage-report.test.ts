import { describe, expect, it } from 'vitest';
import { hasLeaks, leakageReportLines, type LeakageReport } from './leakage-report.js';

const clean: LeakageReport = {
  images: 10,
  rejected: [],
  duplicateThreshold: 0.97,
  nearDuplicateGroups: 2,
  imagesInDuplicateGroups: 4,
  splitCounts: { train: 6, val: 2, test: 2 },
  straddlingGroups: 0,
  crossSplitNearDuplicates: 0,
  fingerprint: 'ab'.repeat(32),
};

const patients = { patients: 4, imagesWithPatient: 10, studies: 0, multiFrameFiles: 0, groupsBefore: 8, groupsAfter: 4, acrossSplits: 0 };

describe('the leakage verdict', () => {
  it('finds no leak in a clean split, and says so last', () => {
    expect(hasLeaks(clean)).toBe(false);
    expect(leakageReportLines(clean).at(-1)).toBe('no leaks');
  });

  it.each<[string, Partial<LeakageReport>]>([
    ['a group in two splits', { straddlingGroups: 1 }],
    ['a near-duplicate pair across splits', { crossSplitNearDuplicates: 2 }],
    ['a training image of a saved split with a copy held out', { savedSplit: { file: 'split.json', trainingImagesWithNearDuplicateHeldOut: 1, examples: ['yes/y1.jpg'] } }],
    ['a patient in two splits', { patients: { ...patients, acrossSplits: 1 } }],
  ])('calls %s a leak', (_name, change) => {
    const report = { ...clean, ...change };
    expect(hasLeaks(report)).toBe(true);
    expect(leakageReportLines(report).at(-1)).toBe('LEAKS FOUND');
  });

  it('names the saved split and its leaked images instead of the recomputed pairs', () => {
    const lines = leakageReportLines({ ...clean, savedSplit: { file: 'old.json', trainingImagesWithNearDuplicateHeldOut: 2, examples: ['yes/a.jpg', 'no/b.jpg'] } });
    expect(lines).toContain('saved split old.json: 2 training images have a near-duplicate among its validation or test images (e.g. yes/a.jpg, no/b.jpg)');
    expect(lines.some((l) => l.startsWith('groups straddling splits'))).toBe(false);
  });
});
