import type { LabeledFile } from './dataset-folder.js';
import { groupNearDuplicates, signatures } from './near-duplicates.js';
import { joinPatientGroups } from './patient-groups.js';
import { concatenate, imagesAt, matchingPixels, type PreprocessedDataset } from './preprocessed-dataset.js';

/**
 * For each image of `own`: whether its group, formed over both datasets together, holds an image of
 * `other`; `byCopies` counts near-duplicates only, `reaches` also joins the images of one patient,
 * DICOM study or multi-frame file (joinPatientGroups). Groups are transitive, so a chain of copies
 * that links the two counts, and so does a copy of another image of a patient the other holds.
 */
export function groupReachesOther(own: PreprocessedDataset, other: PreprocessedDataset, threshold: number): { reaches: boolean[]; byCopies: boolean[] } {
  const size = own.params.size;
  if (other.params.size !== size) throw new Error('both datasets must be preprocessed alike to compare them');
  const union = concatenate(matchingPixels(own), matchingPixels(other));
  const ownCount = own.files.length;
  const { groupOf } = groupNearDuplicates(signatures(union, ownCount + other.files.length, size), threshold);
  const { groupOf: joined } = joinPatientGroups([...own.files, ...other.files], groupOf);
  const reach = (groups: Int32Array): boolean[] => {
    const groupsOfOther = new Set<number>();
    for (let j = ownCount; j < groups.length; j++) groupsOfOther.add(groups[j] as number);
    return Array.from({ length: ownCount }, (_, i) => groupsOfOther.has(groups[i] as number));
  };
  return { reaches: reach(joined), byCopies: reach(groupOf) };
}

/** The images of `dataset` at `indices`, in that order. */
export function subsetDataset(dataset: PreprocessedDataset, indices: readonly number[]): PreprocessedDataset {
  const size = dataset.params.size;
  return {
    ...dataset,
    files: indices.map((i) => dataset.files[i] as LabeledFile),
    pixels: imagesAt(dataset.pixels, indices, size),
    ...(dataset.matchPixels ? { matchPixels: imagesAt(dataset.matchPixels, indices, size) } : {}),
    geometries: indices.map((i) => dataset.geometries[i] as PreprocessedDataset['geometries'][number]),
  };
}

/** What was held out of a training folder because it resembles another folder. */
export interface ExclusionRecord {
  /** The folder whose near-duplicates were held out (every image in every sub-folder). */
  dir: string;
  /** Images of that folder compared against. */
  compared: number;
  /** Images of the training folder held out, relative to it. */
  dropped: string[];
}

/**
 * Drops every image of `dataset` whose near-duplicate group reaches an image of `other`, or whose
 * patient or DICOM study has images there. A model trained on what remains has seen no copy of any
 * image of `other`, nor its patients, so it can start the training of a model evaluated on
 * `other`'s images without leaking them.
 */
export function withoutNearDuplicatesOf(
  dataset: PreprocessedDataset,
  other: PreprocessedDataset,
  dir: string,
  threshold: number,
): { dataset: PreprocessedDataset; record: ExclusionRecord } {
  const { reaches } = groupReachesOther(dataset, other, threshold);
  const kept = reaches.flatMap((hit, i) => (hit ? [] : [i]));
  return {
    dataset: subsetDataset(dataset, kept),
    record: { dir, compared: other.files.length, dropped: reaches.flatMap((hit, i) => (hit ? [(dataset.files[i] as LabeledFile).relPath] : [])) },
  };
}
