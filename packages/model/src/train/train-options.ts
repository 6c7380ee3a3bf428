import { availableParallelism } from 'node:os';
import { DEFAULT_ARCHITECTURE, type ArchitectureConfig } from '../model/architecture.js';
import type { PrepareOptions } from '../data/prepare-task-data.js';
import { TASK_CLASSES } from '../model/tasks.js';
import { DEFAULT_AUGMENTATION, type AugmentationConfig } from './augmentation.js';
import type { EpochRecord, SelectBy } from './training-loop.js';
import { InvalidOptionsError } from './invalid-options.error.js';
import { checkServingViews, type ServingViewOptions } from './serving-views.js';

/** What the data preparation is told as it is (see PrepareOptions); validationJoinsTraining needs selectBy 'last'. */
type DataOptions = Pick<
  PrepareOptions,
  'task' | 'dataDir' | 'testDataDir' | 'extraTrainDir' | 'excludeNearDuplicatesOf' | 'patientsFile' | 'confinement' | 'claheMaxSlope' | 'validationJoinsTraining' | 'cacheDir' | 'maxImages' | 'onProgress'
>;

export interface TrainOptions extends ServingViewOptions, DataOptions {
  /** An artifact whose weights training starts from (the classifier's only with the same classes); see initialiseFrom. */
  initFrom?: string;
  /** With an ensemble artifact as initFrom: which member (from 1). */
  initMember?: number;
  outDir: string;
  epochs?: number;
  batchSize?: number;
  inputSize?: number;
  learningRate?: number;
  patience?: number;
  seed?: number;
  /** Seed of the split only (default: seed): members of an ensemble share a split but not their start. */
  splitSeed?: number;
  /** A `split.json` (e.g. a shipped model's) whose train/validation/test assignment to reuse. */
  splitFile?: string;
  /** Gradient workers (threads with a backend each); default: one per core. */
  workers?: number;
  filters?: number[];
  convsPerBlock?: number;
  /** Residual blocks; see {@link ArchitectureConfig.residual}. */
  residual?: boolean;
  dropout?: number;
  /** Decay of the weights' moving average used for validation and the artifact (0: none). */
  averageDecay?: number;
  /** Mixup's Beta(alpha, alpha) parameter (0 or absent: off). */
  mixup?: number;
  /** Weigh each near-duplicate group of training images as one image in the loss (see groupBalancedWeights). */
  weightByGroup?: boolean;
  /** Balance the extra training images' classes among themselves too (see sourceBalancedWeights). */
  balanceExtraTrainData?: boolean;
  /** Each epoch trains on this many of the extra training images, drawn afresh, besides all the main ones; absent: all. */
  extraPerEpoch?: number;
  /** Weight of the outline guidance term (outline-guidance.ts; needs outlinesFile); 0 or absent: off. */
  outlineGuidance?: number;
  /**
   * Fit the check that refuses images unlike the training scans (`btd typicality`) when training
   * on at least this many images; default {@link TYPICALITY_MIN_IMAGES}. Fewer give no reliable limit.
   */
  typicalityMinImages?: number;
  /** Sharpness-aware minimisation's radius (0 or absent: off); each step then costs two gradient passes. */
  sharpness?: number;
  /** What picks the best epoch: validation accuracy (default) or validation loss. */
  selectBy?: SelectBy;
  /** Outlines (VIA JSON keyed by path relative to dataDir) for location metrics on the test split. */
  outlinesFile?: string;
  /** Resume from a checkpoint folder written by an earlier run with the same data. */
  resumeFrom?: string;
  /** Where to write a checkpoint after every epoch. */
  checkpointDir?: string;
  augmentation?: Partial<AugmentationConfig>;
  backend?: 'tensorflow' | 'wasm' | 'cpu';
  /** The command line that started the run, recorded in the manifest. */
  command?: string;
  version?: string;
  signal?: AbortSignal;
  onEpoch?: (e: EpochRecord & { epochs: number; isBest: boolean }) => void;
  onStep?: (done: number, total: number, loss: number) => void;
}

/** Training images below which an artifact gets no check on images unlike them: the limit is a 99.9th percentile of theirs. */
export const TYPICALITY_MIN_IMAGES = 1000;

/** About 200 steps of memory: several epochs on these datasets, short against a whole run. */
export const DEFAULT_AVERAGE_DECAY = 0.995;

/** The options {@link checkTrainOptions} looks at; a training request's hyper-parameters can be checked alone. */
export type CheckedTrainOptions = Pick<
  TrainOptions,
  | keyof ServingViewOptions
  | 'outlineGuidance'
  | 'outlinesFile'
  | 'mixup'
  | 'extraTrainDir'
  | 'balanceExtraTrainData'
  | 'extraPerEpoch'
  | 'validationJoinsTraining'
  | 'selectBy'
  | 'claheMaxSlope'
>;

/**
 * Refuses, with {@link InvalidOptionsError}, options and combinations of them that cannot make a
 * run, before any data is read. It needs no data, so a service can check a request with it before
 * queueing it.
 */
export function checkTrainOptions(options: CheckedTrainOptions): void {
  checkServingViews(options);
  // sharp's clahe takes a whole contrast limit up to 100, and a manifest records no other.
  const slope = options.claheMaxSlope;
  if (slope !== undefined && !(Number.isInteger(slope) && slope >= 0 && slope <= 100)) {
    throw new InvalidOptionsError(`--clahe ${slope}: the contrast limit is a whole number from 0 (off) to 100`);
  }
  if (options.outlineGuidance && !options.outlinesFile) throw new InvalidOptionsError('outline guidance needs the outlines: add --outlines');
  if (options.outlineGuidance && options.mixup) throw new InvalidOptionsError('outline guidance cannot follow blended images: drop --mixup');
  if (!options.extraTrainDir && options.balanceExtraTrainData) throw new InvalidOptionsError('--balance-extra-train-data needs --extra-train-data');
  if (!options.extraTrainDir && options.extraPerEpoch !== undefined) throw new InvalidOptionsError('--extra-per-epoch needs --extra-train-data');
  if (options.validationJoinsTraining && options.selectBy !== 'last') {
    throw new InvalidOptionsError('with the validation images in training nothing can pick the best epoch or stop early: add --select-by last');
  }
}

/** A run's settings with their defaults filled in. */
export interface RunSettings {
  classes: string[];
  inputSize: number;
  seed: number;
  splitSeed: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  averageDecay: number;
  workers: number;
  augmentation: AugmentationConfig;
}

export function runSettings(options: TrainOptions): RunSettings {
  const seed = options.seed ?? 1;
  return {
    classes: [...TASK_CLASSES[options.task]],
    inputSize: options.inputSize ?? 96,
    seed,
    splitSeed: options.splitSeed ?? seed,
    epochs: options.epochs ?? 30,
    batchSize: options.batchSize ?? 32,
    learningRate: options.learningRate ?? 2e-3,
    averageDecay: options.averageDecay ?? DEFAULT_AVERAGE_DECAY,
    workers: Math.max(1, options.workers ?? availableParallelism()),
    augmentation: { ...DEFAULT_AUGMENTATION, ...options.augmentation },
  };
}

/** The network the options ask for, at the run's input size and number of classes. */
export function architectureFor(options: TrainOptions, run: RunSettings): ArchitectureConfig {
  return {
    ...DEFAULT_ARCHITECTURE,
    ...(options.filters ? { filters: options.filters } : {}),
    ...(options.convsPerBlock ? { convsPerBlock: options.convsPerBlock } : {}),
    ...(options.residual ? { residual: true } : {}),
    ...(options.dropout !== undefined ? { dropout: options.dropout } : {}),
    inputSize: run.inputSize,
    numClasses: run.classes.length,
  };
}
