import type { PatientGrouping } from '../data/patient-groups.js';
import { PREPROCESS_VERSION, type PreprocessParams } from '../data/preprocess.js';
import type { ArchitectureConfig } from './architecture.js';
import type { Task } from './tasks.js';

/** The file names of a model artifact directory. */
export const ARTIFACT_FILES = {
  topology: 'model.json',
  weights: 'weights.bin',
  manifest: 'manifest.json',
  metrics: 'metrics.json',
  history: 'history.json',
  split: 'split.json',
  probe: 'probe.png',
  locatorTopology: 'locator.json',
  locatorWeights: 'locator.bin',
  typicality: 'typicality.json',
} as const;

/**
 * The check that refuses images unlike the training scans (see `typicality.ts`): the Gaussian is in
 * `typicality.json`, and an image whose distance to it exceeds `limit` is refused.
 */
export interface TypicalityRecord {
  limit: number;
  /** What the Gaussian and the limit were fitted on: the split's training images and their mirrors. */
  fittedOn: { dir: string; images: number; quantile: number; margin: number; ridge: number };
  /** Held-out images of the split measured against the limit when it was fitted. */
  heldOut?: { set: string; images: number; refused: number };
  command?: string;
}

export interface SplitRecord {
  seed: number;
  fractions: Record<string, number>;
  fingerprint: string;
  /** File in the artifact listing every image with its split and near-duplicate group. */
  file: string;
  duplicateThreshold: number;
  duplicateGroups: number;
  counts: Record<string, Record<string, number>>;
  /** Groups found in more than one split: zero by construction, recorded as evidence. */
  straddlingGroups: number;
  /**
   * When images have patients (DICOM Patient IDs or a patients file), DICOM studies or frames: how
   * many, how many groups joining them left, and the patients found in more than one split (zero by
   * construction, recorded as evidence).
   */
  patients?: PatientGrouping & { acrossSplits: number; file?: string; unmatchedEntries?: number };
  /**
   * The saved split.json whose assignment was reused (`btd train --split`), if any, and the training
   * images moved out of training because a near-duplicate of theirs was held out at this input size.
   */
  reusedFrom?: { file: string; fingerprint?: string; movedOutOfTraining: string[] };
  /** Validation images that joined training (`btd train --validation-joins-training`): nothing was fitted or chosen on validation. */
  validationJoinedTraining?: number;
}

export interface TrainingRecord {
  command?: string;
  epochs: number;
  epochsRun: number;
  bestEpoch: number;
  batchSize: number;
  learningRate: number;
  /** Decay of the weights' moving average the artifact holds; absent or 0: the raw weights of the best epoch. */
  averageDecay?: number;
  seed: number;
  workers: number;
  augmentation: Record<string, number | boolean>;
  /** Mixup's Beta(alpha, alpha) parameter; absent: no mixup. */
  mixup?: number;
  /** Each near-duplicate group of training images weighed as one image (groupBalancedWeights). */
  weightByGroup?: boolean;
  /** The extra training images' classes balanced among themselves too (sourceBalancedWeights). */
  balanceExtraTrainData?: boolean;
  /** Extra training images drawn afresh for each epoch, besides all the main ones; absent: all of them every epoch. */
  extraPerEpoch?: number;
  /** Outline guidance of the classifier's activation map on outlined training images (outline-guidance.ts). */
  outlineGuidance?: { weight: number; outlinedImages: number };
  /** Sharpness-aware minimisation's radius rho; absent: plain steps. */
  sharpness?: number;
  /** The epoch kept was picked by validation loss, or is the last one (a fixed schedule); absent: by validation accuracy. */
  selectBy?: 'loss' | 'last';
  classWeights: Record<string, number>;
  durationSeconds: number;
  imagesPerSecond: number;
  /** The artifact whose weights (all but the classifier's) this training started from. */
  initialisedFrom?: InitialWeightsRecord;
}

/** Where a training run's starting weights came from, and why they cannot leak held-out images. */
export interface InitialWeightsRecord {
  dir: string;
  name: string;
  task: string;
  version: string;
  /** The ensemble member (from 1) it started from, when the artifact is an ensemble. */
  member?: number;
  /** Whether the classifier came along too (same classes): fine-tuning rather than pretraining. */
  classifier?: boolean;
  /** The folder it was trained on, and the training time it took. */
  dataset?: string;
  durationSeconds?: number;
  /** Why its weights have seen no copy of this run's validation or test images. */
  leakFree: string;
}

/** A classifier of an ensemble artifact: its topology file (which names its weights file) and its origin. */
export interface EnsembleMember {
  topology: string;
  version: string;
  createdAt: string;
  training?: TrainingRecord;
  /** The member's own metrics on the shared split, measured when it was trained. */
  metrics?: Record<string, unknown>;
}

/** How an artifact's probabilities were calibrated. */
export interface CalibrationRecord {
  method: 'temperature';
  temperature: number;
  /** The split it was fitted on, and how many images that held. */
  fittedOn: 'val';
  images: number;
  /** Mean negative log-likelihood of the true classes on those images, before and after. */
  nllBefore: number;
  nllAfter: number;
  command?: string;
}

/** Everything needed to trust, reproduce and serve a model. Stored as manifest.json beside the weights. */
export interface ModelManifest {
  name: string;
  task: Task;
  version: string;
  createdAt: string;
  classes: string[];
  inputSize: number;
  preprocessing: PreprocessParams;
  architecture: ArchitectureConfig;
  /** TensorFlow.js backend the model was trained on. */
  backend: string;
  /** Predictions average the image and its left–right mirror. */
  testTimeFlip: boolean;
  /**
   * Probabilities also average copies rotated by these angles (degrees), mirrored too with
   * testTimeFlip. The heatmap comes from the image and its mirror alone. Absent: none.
   */
  testTimeRotations?: number[];
  /**
   * Only images whose top class probability from the image and its mirror (before temperature
   * scaling) is below this get the rotated copies; the others keep that probability. Absent: all.
   */
  testTimeRotationsBelow?: number;
  /** Class whose activation map gives the heatmap (binary: tumor); absent: the predicted class. */
  heatmapClass?: string;
  dataset?: {
    dir: string;
    files: number;
    perClass: Record<string, number>;
    rejected: number;
    /** Another folder that joined the training split only, without any near-duplicate of the main dataset. */
    extraTraining?: { dir: string; listed: number; kept: Record<string, number>; droppedNearDuplicates: number; droppedSamePatient?: number; droppedExcluded?: number };
    /**
     * Images of `dir` held out before the split because their near-duplicate group reaches an image
     * of this folder: a model trained here can start another's training on that folder without leaks.
     */
    excludedNearDuplicatesOf?: { dir: string; compared: number; dropped: number };
  };
  split?: SplitRecord;
  training?: TrainingRecord;
  /**
   * Classifiers whose probabilities are averaged (absent: the one in model.json). All were trained on
   * the split this manifest records; `durationSeconds` is their training time together.
   */
  ensemble?: { command?: string; members: EnsembleMember[]; durationSeconds: number };
  metrics?: Record<string, unknown>;
  /**
   * A tumour locator trained on outlines (locator.json + locator.bin), which gives the heatmap when
   * present: a head on the first classifier's last-block features (`head`), or, in artifacts
   * written before heads, a network of its own (no `kind`).
   */
  locator?: { kind?: 'head'; trainedOn: number; epochs: number; outlines: string; durationSeconds: number; command?: string };
  /**
   * Temperature scaling fitted on the validation images: served probabilities are
   * softmax(log p / temperature). Absent: the network's probabilities as they are.
   */
  calibration?: CalibrationRecord;
  /** Refuses images unlike the training scans; absent: every image is analysed. */
  typicality?: TypicalityRecord;
  /** A synthetic probe image in the artifact and the probabilities this model gives it: a loaded copy must agree. */
  expectedOutput?: { image: string; probabilities: Record<string, number> };
}

/** Test-time rotations a manifest may ask for: non-zero angles of at most 45 degrees either way. */
export function isRotationList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => typeof d === 'number' && Number.isFinite(d) && d !== 0 && Math.abs(d) <= 45);
}

/** A probability threshold for the rotated copies: above 0, at most 1. */
export function isProbabilityBound(value: unknown): value is number {
  return typeof value === 'number' && value > 0 && value <= 1;
}

const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const isIntegerIn = (value: unknown, min: number, max: number): value is number => Number.isInteger(value) && (value as number) >= min && (value as number) <= max;

/** The parameters preprocessing version {@link PREPROCESS_VERSION} reads. */
const PREPROCESS_KEYS = new Set(['version', 'size', 'trimThreshold', 'trimMinShare', 'clahe']);

/**
 * Why a manifest's preprocessing is not the one this build would give its model, if it is not. A model
 * is only valid with the pixels it was trained on: an unknown version, a parameter missing (the
 * default would silently move the crop) or unknown (a later build's), or an input of another size
 * than the network's would be served wrong, or fail on every image, instead of being refused at load.
 */
function preprocessingProblems(preprocessing: unknown, inputSize: unknown): string[] {
  if (!preprocessing || typeof preprocessing !== 'object') return ['preprocessing missing'];
  const p = preprocessing as Partial<PreprocessParams>;
  if (p.version !== PREPROCESS_VERSION) return [`preprocessing version ${String(p.version)} (this build reproduces version ${PREPROCESS_VERSION})`];
  const problems = Object.keys(p).filter((key) => !PREPROCESS_KEYS.has(key)).map((key) => `preprocessing.${key} (unknown to preprocessing version ${PREPROCESS_VERSION})`);
  if (p.size !== inputSize) problems.push(`preprocessing.size ${String(p.size)} does not match inputSize ${String(inputSize)}`);
  if (!isFiniteNumber(p.trimThreshold) || p.trimThreshold < 0 || p.trimThreshold > 255) problems.push(`preprocessing.trimThreshold ${String(p.trimThreshold)} (a grey level 0–255)`);
  if (!isFiniteNumber(p.trimMinShare) || p.trimMinShare < 0 || p.trimMinShare > 1) problems.push(`preprocessing.trimMinShare ${String(p.trimMinShare)} (a share 0–1)`);
  if (p.clahe !== undefined && !isClahe(p.clahe)) problems.push(`preprocessing.clahe ${JSON.stringify(p.clahe)} (tile a whole number of pixels 1–65536, maxSlope a whole number 0–100)`);
  return problems;
}

/** Local contrast equalisation parameters sharp's `clahe` accepts. */
function isClahe(value: unknown): boolean {
  if (!value || typeof value !== 'object') return false;
  const { tile, maxSlope, ...others } = value as Record<string, unknown>;
  return isIntegerIn(tile, 1, 65536) && isIntegerIn(maxSlope, 0, 100) && Object.keys(others).length === 0;
}

export function assertManifest(value: unknown): ModelManifest {
  const m = value as Partial<ModelManifest> | null;
  const problems: string[] = [];
  if (!m || typeof m !== 'object') throw new Error('manifest is not an object');
  if (m.task !== 'tumor-binary' && m.task !== 'tumor-type') problems.push(`task ${String(m.task)}`);
  if (typeof m.name !== 'string' || !m.name) problems.push('name');
  // Probabilities and results are keyed by class: a class named twice would lose one of them.
  if (!Array.isArray(m.classes) || m.classes.length < 2 || !m.classes.every((c) => typeof c === 'string' && c) || new Set(m.classes).size !== m.classes.length) {
    problems.push(`classes ${JSON.stringify(m.classes)} (two or more distinct names)`);
  }
  if (typeof m.inputSize !== 'number' || m.inputSize < 8) problems.push('inputSize');
  problems.push(...preprocessingProblems(m.preprocessing, m.inputSize));
  if (typeof m.version !== 'string' || !m.version) problems.push('version');
  if (m.testTimeRotations !== undefined && !isRotationList(m.testTimeRotations)) problems.push('testTimeRotations');
  if (m.testTimeRotationsBelow !== undefined && !(m.testTimeRotations && isProbabilityBound(m.testTimeRotationsBelow))) problems.push('testTimeRotationsBelow');
  // JSON reads 1e400 as Infinity, which would turn a probability of 0 into NaN.
  if (m.calibration !== undefined && !(isFiniteNumber(m.calibration?.temperature) && m.calibration.temperature > 0)) problems.push('calibration temperature');
  if (m.typicality !== undefined && !(isFiniteNumber(m.typicality?.limit) && m.typicality.limit > 0)) problems.push('typicality limit (a positive number)');
  if (m.heatmapClass !== undefined && !(Array.isArray(m.classes) && m.classes.includes(m.heatmapClass))) problems.push(`heatmapClass ${String(m.heatmapClass)} is not one of the classes`);
  if (problems.length > 0) throw new Error(`invalid model manifest: ${problems.join(', ')}`);
  return m as ModelManifest;
}
