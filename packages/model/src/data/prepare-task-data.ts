import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Task } from '../model/tasks.js';
import { createRandom, shuffleInPlace } from '../util/random.js';
import { withoutNearDuplicatesOf, type ExclusionRecord } from './cross-folder-duplicates.js';
import { assertConfined, listImagesByFolder, listLabeledImages, type DataConfinement, type DatasetListing } from './dataset-folder.js';
import { mergeExtraTrainingData, type ExtraTrainingRecord } from './extra-training-data.js';
import { DEFAULT_DUPLICATE_THRESHOLD, groupNearDuplicates, hasNearDuplicateIn, signatures } from './near-duplicates.js';
import { joinPatientGroups, patientsAcrossSplits, sharesPatientWith, type PatientGrouping } from './patient-groups.js';
import { defaultPatientsFile, withPatientsFile, type PatientsFileRecord } from './patients-file.js';
import { defaultPreprocessParams } from './preprocess.js';
import { imagesAt, loadPreprocessedDataset, matchingPixels, type PreprocessedDataset } from './preprocessed-dataset.js';
import { joinValidationToTraining, reuseSplit, splitByGroups, straddlingGroups, type DatasetSplit, type SavedSplit, type SplitName } from './split.js';

export interface PrepareOptions {
  task: Task;
  dataDir: string;
  /** A separate test folder (e.g. the 4-class set's Testing): the split then holds train and val only. */
  testDataDir?: string;
  /**
   * Another labelled folder whose images join the training split only (see mergeExtraTrainingData).
   * Its folders may hold coarse labels (COARSE_LABELS), e.g. `yes` for any tumour type.
   */
  extraTrainDir?: string;
  /**
   * A folder (every image in every sub-folder) none of whose near-duplicates may be used: they are
   * dropped from dataDir before the split (see withoutNearDuplicatesOf).
   */
  excludeNearDuplicatesOf?: string;
  /**
   * Which patient each image of dataDir belongs to (see readPatientsFile), for images whose DICOM
   * header does not say, or says it wrong: one patient's images go to one split. Default:
   * `patients.csv` or `patients.json` at dataDir's root, when there is one.
   */
  patientsFile?: string;
  /**
   * Where dataDir's class folders, images and patients file may lie once links are resolved (a
   * trainer's TRAINER_DATASET_ROOTS): a class folder or image a link leads elsewhere is not read and
   * is counted among the rejected files, and such a patients file is refused. Absent: links are followed anywhere.
   */
  confinement?: DataConfinement;
  inputSize: number;
  /** Local contrast equalisation with this contrast limit (see PreprocessChoices); absent: off. */
  claheMaxSlope?: number;
  seed: number;
  /** A saved split to reuse instead of drawing one with `seed` (see reuseSplit). */
  savedSplit?: SavedSplit;
  /** Move the validation images into training once the split is drawn or reused (see joinValidationToTraining). */
  validationJoinsTraining?: boolean;
  cacheDir?: string;
  /** Keep at most this many images, evenly spread over the sorted listing (for quick runs). */
  maxImages?: number;
  duplicateThreshold?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface PreparedTaskData {
  dataset: PreprocessedDataset;
  split: DatasetSplit;
  indices: Record<SplitName, number[]>;
  duplicateGroups: number;
  duplicateThreshold: number;
  straddling: number;
  /** Present when images have patients, DICOM studies or frames: how their groups were joined. */
  patientGrouping?: PatientGrouping;
  /** Patients with images in more than one split: zero by construction, recorded as evidence. */
  patientsAcrossSplits: number;
  /** The patients file, how many entries it has and which match no image. */
  patientsFile?: PatientsFileRecord;
  /** Images another folder added to the training split. */
  extra?: ExtraTrainingRecord;
  /** Images of dataDir held out because they resemble another folder. */
  excluded?: ExclusionRecord;
  /** When a saved split was reused: its fingerprint, and the training images it had to hold out. */
  reusedSplit?: { fingerprint?: string; movedOutOfTraining: string[] };
  /** How many validation images joined training (validationJoinsTraining). */
  validationJoinedTraining?: number;
  /** The separate test folder, with which of its images have a near-duplicate in the training folder. */
  external?: { dataset: PreprocessedDataset; hasDuplicateInTraining: boolean[]; sharesPatientWithTraining: boolean[] };
}

const SPLIT_FRACTIONS = { train: 0.72, val: 0.13, test: 0.15 } as const;
const SPLIT_FRACTIONS_EXTERNAL_TEST = { train: 0.85, val: 0.15, test: 0 } as const;

function subsample(listing: DatasetListing, maxImages: number | undefined, seed: number): DatasetListing {
  if (!maxImages || listing.files.length <= maxImages) return listing;
  const files = shuffleInPlace([...listing.files], createRandom(seed)).slice(0, maxImages);
  files.sort((a, b) => a.relPath.localeCompare(b.relPath));
  return { ...listing, files };
}

/** Preprocesses (cached), finds near-duplicate groups and splits without leaks. */
export async function prepareTaskData(options: PrepareOptions): Promise<PreparedTaskData> {
  const params = defaultPreprocessParams(options.inputSize, { claheMaxSlope: options.claheMaxSlope });
  const threshold = options.duplicateThreshold ?? DEFAULT_DUPLICATE_THRESHOLD;
  /** A folder's images preprocessed, with the patients its patients file (or `patientsFile`; none when null) gives them. */
  const load = async (listing: DatasetListing, dir: string, stage: string, patientsFile?: string | null) => {
    const dataset = await loadPreprocessedDataset(listing, params, { cacheDir: options.cacheDir, onProgress: (d, t) => options.onProgress?.(stage, d, t) });
    if (patientsFile === null) return { dataset, patientsFile: undefined };
    const { files, patientsFile: record } = await withPatientsFile(dataset.files, dir, patientsFile);
    return { dataset: { ...dataset, files }, patientsFile: record };
  };
  const { confinement } = options;
  const listing = subsample(await listLabeledImages(options.dataDir, options.task, { confinement }), options.maxImages, options.seed);
  // Within a confinement, the folder's own patients file is looked for once, before the preprocessing, and read
  // at the real path its check found: one changed or added since (a link to /etc/passwd) is not read.
  const own = confinement && !options.patientsFile ? ((await defaultPatientsFile(options.dataDir)) ?? null) : undefined;
  const patientsSource = own === undefined ? options.patientsFile : own && (await assertConfined(own, confinement, 'patients file'));
  const { dataset: loaded, patientsFile: read } = await load(listing, options.dataDir, 'preprocess', patientsSource);
  // Recorded by its name in the folder, as without a confinement.
  const patientsFile = own && read ? { ...read, file: own } : read;
  let mainDataset = loaded;
  let excluded: ExclusionRecord | undefined;
  let excludedSet: PreprocessedDataset | undefined;
  if (options.excludeNearDuplicatesOf) {
    ({ dataset: excludedSet } = await load(await listImagesByFolder(options.excludeNearDuplicatesOf), options.excludeNearDuplicatesOf, 'preprocess excluded'));
    ({ dataset: mainDataset, record: excluded } = withoutNearDuplicatesOf(loaded, excludedSet, options.excludeNearDuplicatesOf, threshold));
    if (mainDataset.files.length === 0) throw new Error(`every image of ${options.dataDir} has a near-duplicate in ${options.excludeNearDuplicatesOf}`);
  }
  const groups = groupNearDuplicates(signatures(matchingPixels(mainDataset), mainDataset.files.length, params.size), threshold);
  const { groupOf, grouping: patientGrouping } = joinPatientGroups(mainDataset.files, groups.groupOf);
  const splitOptions = { seed: options.seed, fractions: options.testDataDir ? SPLIT_FRACTIONS_EXTERNAL_TEST : SPLIT_FRACTIONS };
  const reused = options.savedSplit ? reuseSplit(mainDataset.files, groupOf, options.savedSplit, splitOptions) : undefined;
  const drawn = reused ?? splitByGroups(mainDataset.files, groupOf, splitOptions);
  const joined = options.validationJoinsTraining ? joinValidationToTraining(drawn) : undefined;
  const split = joined ?? drawn;
  const indices: Record<SplitName, number[]> = { train: [], val: [], test: [] };
  split.assignments.forEach((a, i) => indices[a.split].push(i));
  let dataset = mainDataset;
  let extra: ExtraTrainingRecord | undefined;
  if (options.extraTrainDir) {
    const extraListing = subsample(await listLabeledImages(options.extraTrainDir, options.task, { coarse: true }), options.maxImages, options.seed);
    const { dataset: extraLoaded } = await load(extraListing, options.extraTrainDir, 'preprocess extra');
    // The held-out folder's copies stay out of the extra images too: the model sees no copy of any of its images.
    const heldOut = excludedSet ? withoutNearDuplicatesOf(extraLoaded, excludedSet, options.excludeNearDuplicatesOf as string, threshold) : undefined;
    const merged = mergeExtraTrainingData(mainDataset, heldOut?.dataset ?? extraLoaded, options.extraTrainDir, threshold);
    dataset = merged.dataset;
    extra = { ...merged.record, listed: extraLoaded.files.length, ...(heldOut ? { droppedExcluded: heldOut.record.dropped.length } : {}) };
    indices.train.push(...merged.extraIndices);
  }
  const prepared: PreparedTaskData = {
    dataset,
    split,
    indices,
    duplicateGroups: groups.duplicateGroups,
    duplicateThreshold: threshold,
    straddling: straddlingGroups(split.assignments).length,
    ...(patientGrouping ? { patientGrouping } : {}),
    patientsAcrossSplits: patientsAcrossSplits(mainDataset.files, split.assignments.map((a) => a.split)).length,
    ...(patientsFile ? { patientsFile } : {}),
    ...(extra ? { extra } : {}),
    ...(excluded ? { excluded } : {}),
    ...(reused ? { reusedSplit: { fingerprint: options.savedSplit?.fingerprint, movedOutOfTraining: reused.movedOutOfTraining } } : {}),
    ...(joined ? { validationJoinedTraining: joined.joinedTraining } : {}),
  };
  if (options.testDataDir) {
    const testListing = subsample(await listLabeledImages(options.testDataDir, options.task), options.maxImages, options.seed);
    const { dataset: testSet } = await load(testListing, options.testDataDir, 'preprocess test');
    const testSigs = signatures(matchingPixels(testSet), testSet.files.length, params.size);
    const trainingSigs = signatures(matchingPixels(dataset), dataset.files.length, params.size);
    prepared.external = {
      dataset: testSet,
      hasDuplicateInTraining: hasNearDuplicateIn(testSigs, trainingSigs, threshold),
      sharesPatientWithTraining: sharesPatientWith(testSet.files, dataset.files),
    };
  }
  return prepared;
}

/**
 * sha256 over the sorted labels and names of the training images, extra ones included: a
 * checkpoint resumes only onto the same training set.
 */
export function trainingSetFingerprint(prepared: PreparedTaskData): string {
  const names = prepared.indices.train.map((i) => {
    const file = prepared.dataset.files[i] as { relPath: string; label: string };
    return `${file.label}\t${file.relPath}`;
  }).sort();
  return createHash('sha256').update(names.join('\n')).digest('hex');
}

/** Near-duplicate pairs across splits, recomputed from the images (must be zero). */
export function crossSplitDuplicates(prepared: PreparedTaskData): number {
  const { dataset, indices, duplicateThreshold } = prepared;
  const size = dataset.params.size;
  const pick = (idx: number[]) => signatures(imagesAt(matchingPixels(dataset), idx, size), idx.length, size);
  const train = pick(indices.train);
  let count = 0;
  for (const other of [indices.val, indices.test]) {
    if (other.length === 0) continue;
    count += hasNearDuplicateIn(pick(other), train, duplicateThreshold).filter(Boolean).length;
  }
  return count;
}

/** What a manifest and the leakage report say of the patients, studies and frames behind a split (absent without any). */
export function patientsRecord(prepared: PreparedTaskData): (PatientGrouping & { acrossSplits: number; file?: string; unmatchedEntries?: number }) | undefined {
  if (!prepared.patientGrouping) return undefined;
  const file = prepared.patientsFile;
  return {
    ...prepared.patientGrouping,
    acrossSplits: prepared.patientsAcrossSplits,
    ...(file ? { file: path.relative(process.cwd(), file.file) || file.file, unmatchedEntries: file.unmatched.length } : {}),
  };
}
