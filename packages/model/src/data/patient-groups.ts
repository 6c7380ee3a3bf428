import type { LabeledFile } from './dataset-folder.js';
import { DisjointSets } from './near-duplicates.js';

/** How far one patient's, one study's and one file's images were kept together. */
export interface PatientGrouping {
  /** Distinct patients among the images (DICOM Patient IDs, or a patients file's entries). */
  patients: number;
  /** Images with a patient. */
  imagesWithPatient: number;
  /** Distinct DICOM studies among the images. */
  studies: number;
  /** Multi-frame DICOM files (each frame is an image). */
  multiFrameFiles: number;
  /** Groups before and after joining those of one patient, study or file. */
  groupsBefore: number;
  groupsAfter: number;
}

/** The keys an image is kept together by: its patient, its study and, for a frame, its file. */
function ownerKeys(file: LabeledFile): string[] {
  const keys: string[] = [];
  if (file.patient !== undefined) keys.push(`patient\0${file.patient}`);
  if (file.study !== undefined) keys.push(`study\0${file.study}`);
  if (file.frame !== undefined) keys.push(`file\0${file.path}`);
  return keys;
}

const distinct = (values: Iterable<unknown>) => new Set(values).size;

/**
 * Joins the near-duplicate groups of images that share a patient, a DICOM study or a multi-frame
 * file, so that a split keeps each patient's images on one side: two slices of one patient are not
 * copies, yet a model that saw one has seen the other's patient. A group's id stays the smallest
 * index in it; when no image has a patient, a study or a frame, `groupOf` comes back unchanged.
 */
export function joinPatientGroups(files: readonly LabeledFile[], groupOf: Int32Array): { groupOf: Int32Array; grouping?: PatientGrouping } {
  const keyed = files.map(ownerKeys);
  if (keyed.every((keys) => keys.length === 0)) return { groupOf };
  const sets = new DisjointSets(files.length);
  const firstWith = new Map<string, number>();
  keyed.forEach((keys, i) => {
    for (const key of keys) {
      const first = firstWith.get(key);
      if (first === undefined) firstWith.set(key, i);
      else sets.union(groupOf[first] as number, groupOf[i] as number);
    }
  });
  const joined = groupOf.map((g) => sets.find(g));
  const withPatient = files.filter((f) => f.patient !== undefined);
  return {
    groupOf: joined,
    grouping: {
      patients: distinct(withPatient.map((f) => f.patient)),
      imagesWithPatient: withPatient.length,
      studies: distinct(files.flatMap((f) => (f.study === undefined ? [] : [f.study]))),
      multiFrameFiles: distinct(files.flatMap((f) => (f.frame === undefined ? [] : [f.path]))),
      groupsBefore: distinct(groupOf),
      groupsAfter: distinct(joined),
    },
  };
}

/** Patients with images in more than one split (must be none). */
export function patientsAcrossSplits(files: readonly LabeledFile[], splitOf: readonly string[]): string[] {
  const splitsOf = new Map<string, Set<string>>();
  files.forEach((f, i) => {
    if (f.patient === undefined) return;
    const set = splitsOf.get(f.patient) ?? new Set<string>();
    set.add(splitOf[i] as string);
    splitsOf.set(f.patient, set);
  });
  return [...splitsOf.entries()].filter(([, splits]) => splits.size > 1).map(([patient]) => patient);
}

/** For each image, whether an image of `others` has its patient or its DICOM study. */
export function sharesPatientWith(files: readonly LabeledFile[], others: readonly LabeledFile[]): boolean[] {
  const patients = new Set(others.flatMap((f) => (f.patient === undefined ? [] : [f.patient])));
  const studies = new Set(others.flatMap((f) => (f.study === undefined ? [] : [f.study])));
  return files.map((f) => (f.patient !== undefined && patients.has(f.patient)) || (f.study !== undefined && studies.has(f.study)));
}
