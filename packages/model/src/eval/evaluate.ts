import { listLabeledImages, subsetListing, type DatasetListing } from '../data/dataset-folder.js';
import { groupNearDuplicates, hasNearDuplicateIn, signatures } from '../data/near-duplicates.js';
import { joinPatientGroups } from '../data/patient-groups.js';
import { withPatientsFile } from '../data/patients-file.js';
import { imagesAt, loadPreprocessedDataset, matchingPixels, type PreprocessedDataset } from '../data/preprocessed-dataset.js';
import type { ForwardPass } from '../model/forward-pass.js';
import { boxFromHeatmap, camToHeatmap, heatmapPeak } from '../model/heatmap.js';
import type { LoadedModel } from '../model/loaded-model.js';
import type { ModelManifest } from '../model/manifest.js';
import { TASK_CLASSES, type Task } from '../model/tasks.js';
import { errorsByGroup, type GroupedAccuracy, type Misclassified } from './errors-by-group.js';
import { classificationMetrics, type ClassificationMetrics } from './metrics.js';
import { patientVerdicts, type PatientVerdicts } from './patient-verdicts.js';
import { locationMetrics, type LocationMetrics, type OutlineEntry, type Outlines } from './outlines.js';

export interface EvaluationResult extends ClassificationMetrics {
  location?: LocationMetrics;
  /** Accuracy with each near-duplicate group of the evaluated images counted once. */
  byGroup?: GroupedAccuracy;
  /** Every image predicted wrong, largest near-duplicate groups first. */
  misclassified?: Misclassified[];
  /** Where images have patients (or DICOM studies): the verdict per patient, as the service gives one per study. */
  byPatient?: PatientVerdicts;
  /**
   * For a model that refuses images unlike its training scans: how many of these images it would
   * refuse when served, and which. The metrics above count every image, refused or not.
   */
  typicality?: { limit: number; refused: number; files: string[] };
}

export interface EvaluateOptions {
  /** Evaluate only these indices of the dataset (default: all). */
  indices?: readonly number[];
  /**
   * Score the model as a tumour detector on images labelled `tumor` / `no_tumor`: every class but
   * `no_tumor` counts as a tumour (e.g. the tumour-type model on a detection dataset).
   */
  asDetection?: boolean;
  outlines?: Outlines;
  batchSize?: number;
}

export type EvaluableModel = LoadedModel & { forwardPass: ForwardPass };

const POSITIVE: Record<string, string | undefined> = { 'tumor-binary': 'tumor' };
/** The task whose labels an evaluation with `asDetection` reads: tumour / no tumour. */
export const DETECTION_TASK: Task = 'tumor-binary';
const DETECTION_CLASSES = TASK_CLASSES[DETECTION_TASK];

/** Probabilities over `classes` as tumour / no tumour: a tumour is any class but `no_tumor`. */
export function detectionProbabilities(probabilities: Float32Array, classes: readonly string[]): Float32Array {
  const none = classes.indexOf('no_tumor');
  if (none < 0) throw new Error(`the model has no no_tumor class (classes: ${classes.join(', ')})`);
  const count = probabilities.length / classes.length;
  const out = new Float32Array(count * 2);
  for (let i = 0; i < count; i++) {
    const noTumor = probabilities[i * classes.length + none] as number;
    out[i * 2] = 1 - noTumor;
    out[i * 2 + 1] = noTumor;
  }
  return out;
}

/** A served model's probabilities for some images of a dataset, the true classes, and where it pointed. */
export interface DatasetPredictions {
  /** count × classes, in the order of `actual`. */
  probabilities: Float32Array;
  /** Class index of each image. */
  actual: number[];
  located: LocatedOutline[];
  /** Images (paths) beyond the model's typicality limit, when it has one. */
  atypical?: string[];
}

interface LocatedOutline {
  entry: OutlineEntry;
  peak: { x: number; y: number };
  box: ReturnType<typeof boxFromHeatmap>;
}

/** Runs a served model (test-time flip included) on preprocessed images of a dataset. */
export function predictOnDataset(model: EvaluableModel, dataset: PreprocessedDataset, options: EvaluateOptions = {}): DatasetPredictions {
  const run = predictInBatches(model, dataset, options);
  for (;;) {
    const step = run.next();
    if (step.done) return step.value;
  }
}

/**
 * {@link predictOnDataset}, giving way to the event loop after each batch and stopping there, with
 * the signal's reason, once `signal` is aborted.
 */
async function predictOnDatasetUnless(signal: AbortSignal, model: EvaluableModel, dataset: PreprocessedDataset, options: EvaluateOptions = {}): Promise<DatasetPredictions> {
  const run = predictInBatches(model, dataset, options);
  for (;;) {
    signal.throwIfAborted();
    const step = run.next();
    if (step.done) return step.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The predictions of {@link predictOnDataset}, yielding after each batch. */
function* predictInBatches(model: EvaluableModel, dataset: PreprocessedDataset, options: EvaluateOptions): Generator<void, DatasetPredictions> {
  const manifest: ModelManifest = model.manifest;
  if (dataset.params.size !== manifest.inputSize || dataset.params.version !== manifest.preprocessing.version) {
    throw new Error('dataset was preprocessed with other parameters than the model expects');
  }
  const indices = options.indices ?? dataset.files.map((_, i) => i);
  const classes = manifest.classes;
  const labelClasses = options.asDetection ? DETECTION_CLASSES : classes;
  const camClass = manifest.heatmapClass ? classes.indexOf(manifest.heatmapClass) : -1;
  const batchSize = options.batchSize ?? 32;
  const probabilities = new Float32Array(indices.length * classes.length);
  const located: LocatedOutline[] = [];
  const limit = manifest.typicality?.limit;
  const atypical: string[] = [];
  for (let start = 0; start < indices.length; start += batchSize) {
    const batch = indices.slice(start, start + batchSize);
    const out = model.forwardPass.run(imagesAt(dataset.pixels, batch, manifest.inputSize), batch.length, camClass);
    probabilities.set(out.probabilities, start * classes.length);
    batch.forEach((index, i) => {
      if (limit !== undefined && (out.atypicality?.[i] ?? Infinity) > limit) atypical.push(dataset.files[index]!.relPath);
    });
    batch.forEach((index, i) => {
      const entry = options.outlines?.[dataset.files[index]!.relPath];
      if (!entry || entry.regions.length === 0) return;
      const geometry = dataset.geometries[index]!;
      const camCells = out.camSide * out.camSide;
      const heatmap = camToHeatmap(out.cams.subarray(i * camCells, (i + 1) * camCells), out.camSide, geometry);
      located.push({ entry, peak: heatmapPeak(heatmap, geometry), box: boxFromHeatmap(heatmap, geometry) });
    });
    yield;
  }
  const actual = indices.map((index) => {
    const c = labelClasses.indexOf(dataset.files[index]!.label);
    if (c < 0) throw new Error(`label ${dataset.files[index]!.label} is not a class of ${options.asDetection ? 'tumour detection' : manifest.task}`);
    return c;
  });
  const measured = limit !== undefined ? { atypical } : {};
  return { probabilities: options.asDetection ? detectionProbabilities(probabilities, classes) : probabilities, actual, located, ...measured };
}

/** Metrics of a served model (test-time flip included) on preprocessed images. */
export function evaluateOnDataset(model: EvaluableModel, dataset: PreprocessedDataset, options: EvaluateOptions = {}): EvaluationResult {
  return metricsOf(model, dataset, predictOnDataset(model, dataset, options), options);
}

/** {@link evaluateOnDataset}, stopping after a batch once `signal` is aborted (without one, at once). */
async function evaluateOnDatasetUnless(signal: AbortSignal | undefined, model: EvaluableModel, dataset: PreprocessedDataset, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  if (!signal) return evaluateOnDataset(model, dataset, options);
  return metricsOf(model, dataset, await predictOnDatasetUnless(signal, model, dataset, options), options);
}

/** The metrics of a model's predictions on images of a dataset. */
function metricsOf(model: EvaluableModel, dataset: PreprocessedDataset, { probabilities, actual, located, atypical }: DatasetPredictions, options: EvaluateOptions): EvaluationResult {
  const classes = options.asDetection ? DETECTION_CLASSES : model.manifest.classes;
  const metrics: EvaluationResult = classificationMetrics(actual, probabilities, classes, POSITIVE[options.asDetection ? DETECTION_TASK : model.manifest.task]);
  if (options.outlines) metrics.location = locationMetrics(located);
  const indices = options.indices ?? dataset.files.map((_, i) => i);
  const files = indices.map((index) => dataset.files[index]!);
  const byPatient = patientVerdicts(files.map((f) => f.patient ?? f.study), actual, probabilities, classes);
  return {
    ...metrics,
    ...errorsByGroup(files.map((f) => f.relPath), actual, probabilities, classes, evaluationGroups(dataset, indices)),
    ...(byPatient ? { byPatient } : {}),
    ...(atypical && model.manifest.typicality ? { typicality: { limit: model.manifest.typicality.limit, refused: atypical.length, files: atypical } } : {}),
  };
}

/**
 * Group ids of some images of a dataset, among those images only: near-duplicates, joined with the
 * images of one patient, DICOM study or multi-frame file, so that the errors are counted, and the
 * accuracy's interval resampled, by what is independent.
 */
function evaluationGroups(dataset: PreprocessedDataset, indices: readonly number[]): Int32Array {
  const size = dataset.params.size;
  const { groupOf } = groupNearDuplicates(signatures(imagesAt(matchingPixels(dataset), indices, size), indices.length, size));
  return joinPatientGroups(indices.map((i) => dataset.files[i]!), groupOf).groupOf;
}

/** Which images of a folder {@link evaluateModel} evaluates. */
export interface FolderEvaluationOptions {
  maxImages?: number;
  outlines?: Outlines;
  cacheDir?: string;
  /** Only these images (paths relative to the folder), e.g. a saved split's test images. */
  only?: ReadonlySet<string>;
  /** Leave out every image with a near-duplicate (mirrored copies included) among these images. */
  withoutCopiesIn?: DatasetListing;
  /** Score as a tumour detector on a folder of `tumor` / `no_tumor` images (see {@link EvaluateOptions.asDetection}). */
  asDetection?: boolean;
  /** Which patient each image belongs to (see readPatientsFile); default: `patients.csv` or `patients.json` at the folder's root. */
  patientsFile?: string;
  /** Stops the evaluation, with the signal's reason, at the next image it preprocesses or batch it predicts once aborted. */
  signal?: AbortSignal;
}

/** Refuses a selection (`only`, e.g. a split file's test images) that names none of the folder's images. */
function checkImagesSelected(dataDir: string, listing: DatasetListing, only: ReadonlySet<string>): void {
  if (listing.files.length > 0) return;
  throw new Error(`none of the ${only.size} images asked for (e.g. by a split file) is in ${dataDir}, so there is nothing to evaluate (their paths must be relative to that folder)`);
}

/** How many refusals the error of {@link checkImagesAnalysed} names; the rest are counted. */
const REFUSALS_NAMED = 3;

/** Refuses a folder none of whose images could be analysed, naming the first reasons. */
function checkImagesAnalysed(dataDir: string, dataset: PreprocessedDataset): void {
  if (dataset.files.length > 0) return;
  const named = dataset.rejected.slice(0, REFUSALS_NAMED).map((r) => `${r.relPath}: ${r.reason}`);
  const more = dataset.rejected.length > REFUSALS_NAMED ? `; and ${dataset.rejected.length - REFUSALS_NAMED} more` : '';
  throw new Error(`none of the ${dataset.rejected.length} images in ${dataDir} could be analysed, so nothing was evaluated (${named.join('; ')}${more})`);
}

/**
 * Evaluates a model on a folder with one sub-folder per class (aliases accepted). Refuses when no
 * image is left to evaluate: the figures of none (accuracy 0, n = 0) would read as a model that is
 * always wrong, and `btd eval --record` or a promotion gate would keep them.
 */
export async function evaluateModel(
  model: EvaluableModel,
  dataDir: string,
  options: FolderEvaluationOptions = {},
): Promise<EvaluationResult & { rejected: { relPath: string; reason: string }[]; leftOutAsCopies?: number }> {
  const detection = options.asDetection ?? false;
  let listing = await listLabeledImages(dataDir, detection ? DETECTION_TASK : model.manifest.task);
  listing = { ...listing, files: (await withPatientsFile(listing.files, dataDir, options.patientsFile)).files };
  if (options.only) {
    listing = subsetListing(listing, options.only);
    checkImagesSelected(dataDir, listing, options.only);
  }
  if (options.maxImages && listing.files.length > options.maxImages) {
    const step = listing.files.length / options.maxImages;
    listing.files = Array.from({ length: options.maxImages }, (_, i) => listing.files[Math.floor(i * step)]!);
  }
  const preprocessing = model.manifest.preprocessing;
  const { signal } = options;
  const loading = { cacheDir: options.cacheDir, ...(signal ? { signal } : {}) };
  const dataset = await loadPreprocessedDataset(listing, preprocessing, loading);
  checkImagesAnalysed(dataDir, dataset);
  if (!options.withoutCopiesIn) return { ...(await evaluateOnDatasetUnless(signal, model, dataset, { outlines: options.outlines, asDetection: detection })), rejected: dataset.rejected };
  const reference = await loadPreprocessedDataset(options.withoutCopiesIn, preprocessing, loading);
  const size = preprocessing.size;
  const copies = hasNearDuplicateIn(signatures(matchingPixels(dataset), dataset.files.length, size), signatures(matchingPixels(reference), reference.files.length, size));
  const indices = copies.flatMap((copy, i) => (copy ? [] : [i]));
  if (indices.length === 0) throw new Error('every image has a near-duplicate among the images to leave out: nothing left to evaluate');
  return {
    ...(await evaluateOnDatasetUnless(signal, model, dataset, { outlines: options.outlines, indices, asDetection: detection })),
    rejected: dataset.rejected,
    leftOutAsCopies: dataset.files.length - indices.length,
  };
}
