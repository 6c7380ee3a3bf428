import type { LabeledFile } from './dataset-folder.js';
import { groupNearDuplicates, signatures } from './near-duplicates.js';
import type { PreprocessedDataset } from './preprocessed-dataset.js';

/** What another folder added to the training split, and what it could not add. */
export interface ExtraTrainingRecord {
  dir: string;
  /** Images decoded from the folder. */
  listed: number;
  /** Images added to the training split, per class. */
  kept: Record<string, number>;
  /** Images dropped because their near-duplicate group reaches an image of the main dataset. */
  droppedNearDuplicates: number;
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
 * of copies, and images the main set already holds are not counted twice.
 */
export function mergeExtraTrainingData(
  main: PreprocessedDataset,
  extra: PreprocessedDataset,
  dir: string,
  threshold: number,
): MergedTrainingData {
  const size = main.params.size;
  if (extra.params.size !== size) throw new Error('extra training data must be preprocessed like the main dataset');
  const area = size * size;
  const mainCount = main.files.length;
  const union = new Uint8Array(main.pixels.length + extra.pixels.length);
  union.set(main.pixels);
  union.set(extra.pixels, main.pixels.length);
  const { groupOf } = groupNearDuplicates(signatures(union, mainCount + extra.files.length, size), threshold);
  const groupsWithMain = new Set<number>();
  for (let i = 0; i < mainCount; i++) groupsWithMain.add(groupOf[i] as number);

  const keptIndices: number[] = [];
  extra.files.forEach((_, j) => {
    if (!groupsWithMain.has(groupOf[mainCount + j] as number)) keptIndices.push(j);
  });
  const pixels = new Uint8Array((mainCount + keptIndices.length) * area);
  pixels.set(main.pixels);
  const files: LabeledFile[] = [...main.files];
  const geometries = [...main.geometries];
  const kept: Record<string, number> = {};
  keptIndices.forEach((j, k) => {
    pixels.set(extra.pixels.subarray(j * area, (j + 1) * area), (mainCount + k) * area);
    const file = extra.files[j] as LabeledFile;
    files.push(file);
    geometries.push(extra.geometries[j] as (typeof geometries)[number]);
    kept[file.label] = (kept[file.label] ?? 0) + 1;
  });
  return {
    dataset: { ...main, files, pixels, geometries },
    extraIndices: keptIndices.map((_, k) => mainCount + k),
    record: {
      dir,
      listed: extra.files.length,
      kept,
      droppedNearDuplicates: extra.files.length - keptIndices.length,
      files: keptIndices.map((j) => ({ relPath: (extra.files[j] as LabeledFile).relPath, label: (extra.files[j] as LabeledFile).label })),
    },
  };
}
