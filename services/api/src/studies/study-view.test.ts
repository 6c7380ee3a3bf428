import { describe, expect, it } from 'vitest';
import type { ImageRecord } from '../store/records.js';
import { resultCautions, studyVerdict, typeAgreesWithDetection } from './study-view.js';

type VerdictInput = Pick<ImageRecord, 'id' | 'state' | 'summary' | 'dicom'>;

function done(id: string, tumorProbability: number): VerdictInput {
  const summary = { label: tumorProbability >= 0.5 ? 'tumor' : 'no_tumor', tumorProbability } as NonNullable<ImageRecord['summary']>;
  return { id, state: 'done', summary };
}

const failed = (id: string): VerdictInput => ({ id, state: 'failed' });
const queued = (id: string): VerdictInput => ({ id, state: 'queued' });

describe('studyVerdict', () => {
  it('calls a study tumour when any image shows one, and points at the most likely image', () => {
    expect(studyVerdict([done('a', 0.1), done('b', 0.93), done('c', 0.7), failed('d')])).toEqual({
      label: 'tumor',
      tumorProbability: 0.93,
      imageId: 'b',
      tumorImages: 2,
      analysedImages: 3,
      failedImages: 1,
      cautions: [],
    });
  });

  it('calls a study free of tumour only when every image was analysed', () => {
    expect(studyVerdict([done('a', 0.1), done('b', 0.3)])).toMatchObject({ label: 'no_tumor', tumorProbability: 0.3, imageId: 'b', tumorImages: 0 });
    expect(studyVerdict([done('a', 0.1), failed('b')])).toMatchObject({ label: 'incomplete', tumorProbability: 0.1, analysedImages: 1, failedImages: 1 });
    expect(studyVerdict([failed('a')])).toEqual({ label: 'incomplete', tumorImages: 0, analysedImages: 0, failedImages: 1, cautions: [] });
  });

  it('gives no verdict while an image is still to be analysed', () => {
    expect(studyVerdict([done('a', 0.99), queued('b')])).toBeUndefined();
    expect(studyVerdict([])).toBeUndefined();
  });
});

describe('resultCautions', () => {
  it('cautions against a result on a DICOM slice of another plane than axial, and carries it to the verdict', () => {
    expect(resultCautions({ dicom: { plane: 'axial' } })).toEqual([]);
    expect(resultCautions({})).toEqual([]);
    const [caution] = resultCautions({ dicom: { plane: 'sagittal' } });
    expect(caution).toMatchObject({ code: 'plane_not_axial', message: expect.stringMatching(/^sagittal slice: the detector is meant for axial slices/) });
    expect(resultCautions({ dicom: { plane: 'oblique' } })[0]?.code).toBe('plane_not_axial');
    const sagittal = { ...done('s', 0.9), dicom: { plane: 'sagittal' as const } };
    expect(studyVerdict([done('a', 0.2), sagittal])?.cautions).toEqual(['plane_not_axial']);
    // A slice that failed has no answer to caution against.
    expect(studyVerdict([done('a', 0.2), { ...failed('f'), dicom: { plane: 'coronal' } }])?.cautions).toEqual([]);
  });
});

describe('typeAgreesWithDetection', () => {
  it('agrees when both models find a tumour, or neither does', () => {
    expect(typeAgreesWithDetection('tumor', 'glioma')).toBe(true);
    expect(typeAgreesWithDetection('tumor', 'pituitary')).toBe(true);
    expect(typeAgreesWithDetection('no_tumor', 'no_tumor')).toBe(true);
  });

  it('disagrees when only one of them finds a tumour', () => {
    expect(typeAgreesWithDetection('tumor', 'no_tumor')).toBe(false);
    expect(typeAgreesWithDetection('no_tumor', 'meningioma')).toBe(false);
  });
});
