/**
 * Detection by patient, as the service gives a study's verdict: a patient has a tumour when any of
 * their images is labelled with one, and is called so when any of their images is predicted to show
 * one. A radiologist reads a patient's scan, not a slice; this is the figure that says how often
 * the verdict for a patient is right.
 */
import { topClass } from './metrics.js';

const NO_TUMOR = 'no_tumor';

export interface PatientVerdicts {
  /** Patients (or, for DICOM files without a Patient ID, studies) among the evaluated images. */
  patients: number;
  /** Evaluated images that belong to one of them. */
  images: number;
  /** Patients with a tumour-labelled image, and how many of them were called so. */
  tumourPatients: number;
  /** Share of the patients whose verdict is right. */
  accuracy: number;
  /** Share of the patients with a tumour that were called so; null without any. */
  sensitivity: number | null;
  /** Share of the patients without a tumour that were called so; null without any. */
  specificity: number | null;
}

/**
 * @param owners per evaluated image, its patient (or study), or undefined when unknown
 * @param probabilities n × classes, row-major; every class but `no_tumor` counts as a tumour
 * @returns undefined when no image has a patient
 */
export function patientVerdicts(
  owners: readonly (string | undefined)[],
  actual: readonly number[],
  probabilities: Float32Array | readonly number[],
  classes: readonly string[],
): PatientVerdicts | undefined {
  const noTumor = classes.indexOf(NO_TUMOR);
  if (noTumor < 0) throw new Error(`patient verdicts need a ${NO_TUMOR} class, not ${classes.join(', ')}`);
  const byPatient = new Map<string, { hasTumour: boolean; calledTumour: boolean }>();
  let images = 0;
  owners.forEach((owner, i) => {
    if (owner === undefined) return;
    images++;
    const verdict = byPatient.get(owner) ?? { hasTumour: false, calledTumour: false };
    verdict.hasTumour ||= actual[i] !== noTumor;
    verdict.calledTumour ||= topClass(probabilities, i, classes.length) !== noTumor;
    byPatient.set(owner, verdict);
  });
  if (byPatient.size === 0) return undefined;
  const verdicts = [...byPatient.values()];
  const share = (of: typeof verdicts, right: (v: (typeof verdicts)[number]) => boolean) => (of.length === 0 ? null : of.filter(right).length / of.length);
  const withTumour = verdicts.filter((v) => v.hasTumour);
  const without = verdicts.filter((v) => !v.hasTumour);
  return {
    patients: verdicts.length,
    images,
    tumourPatients: withTumour.length,
    accuracy: share(verdicts, (v) => v.hasTumour === v.calledTumour) as number,
    sensitivity: share(withTumour, (v) => v.calledTumour),
    specificity: share(without, (v) => !v.calledTumour),
  };
}

/** One line for a reader: the verdicts by patient, with the rates as percentages. */
export function describePatientVerdicts(v: PatientVerdicts): string {
  const pct = (rate: number | null) => (rate === null ? '–' : `${(100 * rate).toFixed(1)}%`);
  return (
    `By patient (a tumour when any image shows one), ${v.patients} patients with ${v.images} images: ${pct(v.accuracy)} right; ` +
    `sensitivity ${pct(v.sensitivity)} of ${v.tumourPatients} with a tumour, specificity ${pct(v.specificity)} of ${v.patients - v.tumourPatients} without.`
  );
}
