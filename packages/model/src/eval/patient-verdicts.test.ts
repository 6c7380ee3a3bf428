import { describe, expect, it } from 'vitest';
import { describePatientVerdicts, patientVerdicts } from './patient-verdicts.js';

describe('verdicts by patient', () => {
  const classes = ['tumor', 'no_tumor'];
  const T = 0;
  const N = 1;
  // Rows of [p(tumor), p(no_tumor)].
  const called = (tumour: boolean) => (tumour ? [0.8, 0.2] : [0.3, 0.7]);

  it('calls a patient a tumour when any image is, and counts a patient with any tumour image as one', () => {
    const owners = ['A', 'A', 'B', 'B', 'C', 'D', undefined];
    // A: tumour on one slice, called on the other (right). B: healthy, one slice called a tumour (wrong).
    // C: tumour, missed (wrong). D: healthy, called healthy (right). The last image has no patient.
    const actual = [T, N, N, N, T, N, T];
    const predictions = [false, true, false, true, false, false, true].flatMap(called);
    expect(patientVerdicts(owners, actual, predictions, classes)).toEqual({
      patients: 4,
      images: 6,
      tumourPatients: 2,
      accuracy: 2 / 4,
      sensitivity: 1 / 2,
      specificity: 1 / 2,
    });
    expect(describePatientVerdicts(patientVerdicts(owners, actual, predictions, classes)!)).toBe(
      'By patient (a tumour when any image shows one), 4 patients with 6 images: 50.0% right; sensitivity 50.0% of 2 with a tumour, specificity 50.0% of 2 without.',
    );
  });

  it('counts every tumour type as a tumour, and says nothing without patients', () => {
    const types = ['glioma', 'meningioma', 'no_tumor', 'pituitary'];
    const row = (c: number) => types.map((_, k) => (k === c ? 0.7 : 0.1));
    // The patient's meningioma slice is read as a glioma: still a tumour found.
    expect(patientVerdicts(['A', 'A'], [1, 2], [...row(0), ...row(2)], types)).toMatchObject({ patients: 1, accuracy: 1, sensitivity: 1, specificity: null });
    expect(patientVerdicts([undefined, undefined], [1, 2], [...row(0), ...row(2)], types)).toBeUndefined();
    expect(() => patientVerdicts(['A'], [0], [1], ['tumor'])).toThrow(/need a no_tumor class/);
  });
});
