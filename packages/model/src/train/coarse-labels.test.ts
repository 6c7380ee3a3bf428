import { describe, expect, it } from 'vitest';
import { classOfFolder, labelOfFolderAllowingCoarse, TASK_CLASSES } from '../model/tasks.js';
import { coarseLabelMasks } from './coarse-labels.js';

const classes = TASK_CLASSES['tumor-type'];

describe('coarse labels for extra training data', () => {
  it('reads a yes folder as any tumour type for tumor-type extra data only', () => {
    expect(labelOfFolderAllowingCoarse('tumor-type', 'yes')).toBe('tumor');
    expect(labelOfFolderAllowingCoarse('tumor-type', 'tumor')).toBe('tumor');
    expect(labelOfFolderAllowingCoarse('tumor-type', 'no')).toBe('no_tumor');
    expect(labelOfFolderAllowingCoarse('tumor-type', 'glioma')).toBe('glioma');
    expect(labelOfFolderAllowingCoarse('tumor-binary', 'yes')).toBe('tumor');
    expect(classOfFolder('tumor-type', 'yes')).toBeUndefined();
  });

  it('masks the classes a coarse label stands for, and nothing when there is none', () => {
    const files = ['glioma', 'tumor', 'no_tumor'].map((label) => ({ label }));
    expect(Array.from(new Uint8Array(coarseLabelMasks('tumor-type', files, classes)!))).toEqual([0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
    expect(coarseLabelMasks('tumor-type', [{ label: 'glioma' }], classes)).toBeUndefined();
  });
});
