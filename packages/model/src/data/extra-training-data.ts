import { groupReachesOther, subsetDataset } from './cross-folder-duplicates.js';
import { concatenate, matchingPixels, type PreprocessedDataset } from './preprocessed-dataset.js';

/** What another folder added to the training split, and what it could not add. */
export interface ExtraTrainingRecord {
  dir: string;
  /** Images decoded from the folder. */
  listed: number;
  /** Images added to the training split, per class. */
  kept: Record<string, number>;
  /** Images dropped because their near-duplicate group reaches an image of the main dataset. */
  droppedNearDuplicates: number;
  /** Other images dropped because their patient or DICOM study has images in the main dataset (or a copy of theirs does). */
  droppedSamePatient: number;
  /** Images dropped first because their near-duplicate group (or patient) reaches the `--exclude-near-duplicates-of` folder, when one is given. */
  droppedExcluded?: number;
  /** Kept images, relative to `dir`. */
  files: { relPath: string; label: string }[];
}

export interface MergedTrainingData {
  /** The main dataset followed by the kept extra images. */
  dataset: PreprocessedDataset;
  /** Indices (into `dataset`) of the kept extra images. */
  extraIndices: number[];
  record: ExtraTrainingRecord;
}

/**
 * Adds another labelled folder to the training split only. Near-duplicates are grouped over the
 * union of both folders, and an extra image joins only when its whole group holds no image of the
 * main dataset: no copy of a validation or test image can enter training, not even through a chain
 * of copies, and images the main set already holds are not counted twice. Nor does an image whose
 * patient or DICOM study has images in the main dataset.
 */
export function mergeExtraTrainingData(
  main: PreprocessedDataset,
  extra: PreprocessedDataset,
  dir: string,
  threshold: number,
): MergedTrainingData {
  if (JSON.stringify(extra.params) !== JSON.stringify(main.params)) throw new Error('extra training data must be preprocessed like the main dataset');
  // A patient seen in the main dataset may be held out there: none of their images may train either.
  const { reaches, byCopies } = groupReachesOther(extra, main, threshold);
  const keptIndices = reaches.flatMap((hit, j) => (hit ? [] : [j]));
  const keptSet = subsetDataset(extra, keptIndices);
  const mainCount = main.files.length;
  const pixels = concatenate(main.pixels, keptSet.pixels);
  const kept: Record<string, number> = {};
  for (const file of keptSet.files) kept[file.label] = (kept[file.label] ?? 0) + 1;
  return {
    dataset: {
      ...main,
      files: [...main.files, ...keptSet.files],
      pixels,
      // Both or neither have them: the two are preprocessed alike.
      ...(main.matchPixels ? { matchPixels: concatenate(main.matchPixels, matchingPixels(keptSet)) } : {}),
      geometries: [...main.geometries, ...keptSet.geometries],
    },
    extraIndices: keptIndices.map((_, k) => mainCount + k),
    record: {
      dir,
      listed: extra.files.length,
      kept,
      droppedNearDuplicates: byCopies.filter(Boolean).length,
      droppedSamePatient: reaches.filter((hit, j) => hit && !byCopies[j]).length,
      files: keptSet.files.map((file) => ({ relPath: file.relPath, label: file.label })),
    },
  };
}
