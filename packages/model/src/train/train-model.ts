import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { initBackend } from '../backend/index.js';
import { prepareTaskData, trainingSetFingerprint, type PreparedTaskData } from '../data/prepare-task-data.js';
import { readSplitFile } from '../data/split-file.js';
import { buildClassifier, DEFAULT_ARCHITECTURE, type ArchitectureConfig } from '../model/architecture.js';
import type { ModelManifest } from '../model/manifest.js';
import { TASK_CLASSES, type Task } from '../model/tasks.js';
import { DEFAULT_AUGMENTATION, type AugmentationConfig } from './augmentation.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { coarseLabelMasks } from './coarse-labels.js';
import type { FlatAdam } from './flat-adam.js';
import { GradientWorkerPool } from './gradient-worker-pool.js';
import { groupBalancedWeights } from './group-weights.js';
import { sourceBalancedWeights } from './source-balance.js';
import { initialiseFrom } from './initial-weights.js';
import { outlineGuidanceFor } from './outline-guidance.js';
import { adamFor, imagesPerEpoch, readWeights, runTrainingLoop, validationScore, writeWeights, type EpochRecord, type LoopState, type SelectBy } from './training-loop.js';
import { checkServingViews, type ServingViewOptions } from './serving-views.js';
import { writeTrainedArtifact } from './write-artifact.js';

export interface TrainOptions extends ServingViewOptions {
  task: Task;
  dataDir: string;
  /** Separate test folder; without it a test split is held out of dataDir. */
  testDataDir?: string;
  /** Another labelled folder that joins the training split only, minus every near-duplicate of dataDir. */
  extraTrainDir?: string;
  /** A folder none of whose near-duplicates may be used: they leave dataDir before the split. */
  excludeNearDuplicatesOf?: string;
  /** Which patient each image belongs to (see readPatientsFile): one patient's images share a split. */
  patientsFile?: string;
  /** An artifact whose weights training starts from (the classifier's only with the same classes); see initialiseFrom. */
  initFrom?: string;
  /** With an ensemble artifact as initFrom: which member (from 1). */
  initMember?: number;
  outDir: string;
  epochs?: number;
  batchSize?: number;
  inputSize?: number;
  /** Local contrast equalisation in the preprocessing, with this contrast limit (e.g. 3); absent: off. */
  claheMaxSlope?: number;
  learningRate?: number;
  patience?: number;
  seed?: number;
  /** Seed of the split only (default: seed): members of an ensemble share a split but not their start. */
  splitSeed?: number;
  /** A `split.json` (e.g. a shipped model's) whose train/validation/test assignment to reuse. */
  splitFile?: string;
  /**
   * Train on the validation images too, for a final run of a schedule chosen earlier on validation:
   * needs selectBy 'last', and leaves the artifact without a fitted temperature.
   */
  validationJoinsTraining?: boolean;
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
  /** Sharpness-aware minimisation's radius (0 or absent: off); each step then costs two gradient passes. */
  sharpness?: number;
  /** What picks the best epoch: validation accuracy (default) or validation loss. */
  selectBy?: SelectBy;
  cacheDir?: string;
  maxImages?: number;
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
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface TrainResult {
  outDir: string;
  manifest: ModelManifest;
  prepared: PreparedTaskData;
}

/** About 200 steps of memory: several epochs on these datasets, short against a whole run. */
export const DEFAULT_AVERAGE_DECAY = 0.995;

function classWeights(labels: Int32Array, train: number[], numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const i of train) counts[labels[i] as number]! += 1;
  return counts.map((c) => (c === 0 ? 0 : train.length / (numClasses * c)));
}

/** The product of the per-image weights given, or undefined when none is. */
function multiplied(factors: (Float32Array | undefined)[]): Float32Array | undefined {
  const given = factors.filter((f): f is Float32Array => f !== undefined);
  if (given.length === 0) return undefined;
  return given.reduce((acc, f) => acc.map((w, i) => w * (f[i] as number)));
}

/** Trains a task's model on all cores, keeps the best epoch by validation, evaluates it and writes the artifact. */
export async function trainModel(options: TrainOptions): Promise<TrainResult> {
  checkServingViews(options);
  if (options.outlineGuidance && !options.outlinesFile) throw new Error('outline guidance needs the outlines: add --outlines');
  if (options.outlineGuidance && options.mixup) throw new Error('outline guidance cannot follow blended images: drop --mixup');
  if (!options.extraTrainDir && options.balanceExtraTrainData) throw new Error('--balance-extra-train-data needs --extra-train-data');
  if (!options.extraTrainDir && options.extraPerEpoch !== undefined) throw new Error('--extra-per-epoch needs --extra-train-data');
  if (options.validationJoinsTraining && options.selectBy !== 'last') {
    throw new Error('with the validation images in training nothing can pick the best epoch or stop early: add --select-by last');
  }
  const savedSplit = options.splitFile ? await readSplitFile(options.splitFile) : undefined;
  if (savedSplit && !savedSplit.assignments.some((a) => a.split === 'val') && options.selectBy !== 'last') {
    throw new Error(`${options.splitFile} puts no images in validation, so nothing can pick the best epoch or stop early: add --select-by last`);
  }
  const started = Date.now();
  const backend = await initBackend({ prefer: options.backend });
  const classes = [...TASK_CLASSES[options.task]];
  const inputSize = options.inputSize ?? 96;
  const seed = options.seed ?? 1;
  const splitSeed = options.splitSeed ?? seed;
  const prepared = await prepareTaskData({
    task: options.task,
    dataDir: options.dataDir,
    testDataDir: options.testDataDir,
    extraTrainDir: options.extraTrainDir,
    excludeNearDuplicatesOf: options.excludeNearDuplicatesOf,
    patientsFile: options.patientsFile,
    inputSize,
    claheMaxSlope: options.claheMaxSlope,
    seed: splitSeed,
    savedSplit,
    validationJoinsTraining: options.validationJoinsTraining,
    cacheDir: options.cacheDir,
    maxImages: options.maxImages,
    onProgress: options.onProgress,
  });
  const { dataset, indices } = prepared;
  // Coarse labels (extra training data only) get -1 and a mask of the classes they stand for.
  const labels = Int32Array.from(dataset.files, (f) => classes.indexOf(f.label));
  const coarse = coarseLabelMasks(options.task, dataset.files, classes);
  if (coarse && (options.mixup ?? 0) > 0) throw new Error('--mixup cannot blend coarse labels (e.g. yes for any tumour type) of --extra-train-data');
  const architecture: ArchitectureConfig = {
    ...DEFAULT_ARCHITECTURE,
    ...(options.filters ? { filters: options.filters } : {}),
    ...(options.convsPerBlock ? { convsPerBlock: options.convsPerBlock } : {}),
    ...(options.residual ? { residual: true } : {}),
    ...(options.dropout !== undefined ? { dropout: options.dropout } : {}),
    inputSize,
    numClasses: classes.length,
  };
  const model = buildClassifier(architecture, seed);
  const initialisedFrom = options.initFrom
    ? await initialiseFrom(options.initFrom, model, { dataDir: options.dataDir, splitFingerprint: prepared.split.fingerprint, ...(prepared.reusedSplit ? { reusedSplit: { fingerprint: prepared.reusedSplit.fingerprint, movedOutOfTraining: prepared.reusedSplit.movedOutOfTraining.length } } : {}) }, { classes, member: options.initMember })
    : undefined;
  const learningRate = options.learningRate ?? 2e-3;
  const optimizer = adamFor(model);
  const augmentation = { ...DEFAULT_AUGMENTATION, ...options.augmentation };
  // Balanced on the main dataset's training images only. Extra training data from another source
  // (its own class mix, and a look the model can tell apart) must not move the prior on the main source.
  const mainTrain = indices.train.filter((i) => i < prepared.split.assignments.length);
  const weightsPerClass = classWeights(labels, mainTrain, classes.length);
  const extraTrain = indices.train.filter((i) => i >= prepared.split.assignments.length);
  const sampleWeights = multiplied([
    options.weightByGroup ? groupBalancedWeights(labels, (i) => prepared.split.assignments[i]?.group, indices.train) : undefined,
    options.balanceExtraTrainData ? sourceBalancedWeights(labels, weightsPerClass, extraTrain) : undefined,
  ]);
  const epochData = options.extraPerEpoch !== undefined
    ? { train: mainTrain, sampled: { indices: extraTrain, perEpoch: options.extraPerEpoch } }
    : { train: indices.train };
  const shared = new SharedArrayBuffer(dataset.pixels.byteLength);
  new Uint8Array(shared).set(dataset.pixels);
  const guidance = options.outlineGuidance && options.outlinesFile
    ? await outlineGuidanceFor(dataset, labels, mainTrain, options.outlinesFile, options.outlineGuidance)
    : undefined;
  const workers = Math.max(1, options.workers ?? availableParallelism());
  const pool = await GradientWorkerPool.start(workers, {
    type: 'init',
    topology: JSON.stringify(model.toJSON(null, false)),
    pixels: shared,
    labels,
    ...(coarse ? { coarse } : {}),
    size: inputSize,
    numClasses: classes.length,
    classWeights: weightsPerClass,
    ...(sampleWeights ? { sampleWeights } : {}),
    ...(guidance ? { outlineGuidance: guidance.init } : {}),
    labelSmoothing: 0.05,
    mixup: options.mixup ?? 0,
    l2: architecture.l2,
    augmentation,
    backend: options.backend,
  });
  const epochs = options.epochs ?? 30;
  const averageDecay = options.averageDecay ?? DEFAULT_AVERAGE_DECAY;
  const batchSize = options.batchSize ?? 32;
  let earlierEpochSeconds = 0;
  let state: LoopState = { epoch: 0, history: [], bestEpoch: 0, bestScore: [-1, -Infinity], bestWeights: readWeights(model) };
  try {
    if (options.resumeFrom) state = await resume(options.resumeFrom, model, optimizer, prepared, state, options.selectBy);
    // The epochs a resumed run had finished before count towards its training time.
    earlierEpochSeconds = state.history.reduce((sum, h) => sum + h.seconds, 0);
    const shapes = model.weights.map((w) => w.shape as number[]);
    state = await runTrainingLoop(
      model,
      optimizer,
      pool,
      { ...epochData, val: indices.val, labels, numClasses: classes.length },
      {
        epochs,
        batchSize,
        learningRate,
        patience: options.patience ?? 10,
        warmupEpochs: 1,
        averageDecay,
        sharpness: options.sharpness,
        selectBy: options.selectBy,
        seed,
        signal: options.signal,
        onStep: options.onStep,
        onEpoch: async (record, isBest) => {
          if (options.checkpointDir) {
            await saveCheckpoint(
              options.checkpointDir,
              { epoch: state.epoch, history: state.history, bestEpoch: state.bestEpoch, bestScore: state.bestScore, splitFingerprint: prepared.split.fingerprint, trainingSetFingerprint: trainingSetFingerprint(prepared) },
              { shapes, latest: readWeights(model), best: state.bestWeights, ...(state.average ? { average: state.average } : {}) },
              optimizer,
            );
          }
          options.onEpoch?.({ ...record, epochs, isBest });
        },
      },
      state,
    );
  } finally {
    await pool.close();
  }
  writeWeights(model, state.bestWeights);
  const seconds = (Date.now() - started) / 1000;
  const trainedImages = state.history.length * imagesPerEpoch(epochData.train, epochData.sampled);
  const trainingSeconds = state.history.reduce((s, h) => s + h.seconds, 0);
  const manifest = await writeTrainedArtifact({
    model,
    options: { ...options, inputSize },
    classes,
    architecture,
    backend: backend.name,
    prepared,
    history: state.history,
    training: {
      command: options.command,
      epochs,
      epochsRun: state.history.length,
      bestEpoch: state.bestEpoch,
      batchSize,
      learningRate,
      averageDecay,
      seed,
      workers,
      augmentation: { ...augmentation },
      ...(options.mixup ? { mixup: options.mixup } : {}),
      ...(options.weightByGroup ? { weightByGroup: true } : {}),
      ...(options.balanceExtraTrainData ? { balanceExtraTrainData: true } : {}),
      ...(options.extraPerEpoch !== undefined ? { extraPerEpoch: options.extraPerEpoch } : {}),
      ...(guidance ? { outlineGuidance: guidance.record } : {}),
      ...(options.sharpness ? { sharpness: options.sharpness } : {}),
      ...(options.selectBy === 'loss' || options.selectBy === 'last' ? { selectBy: options.selectBy } : {}),
      classWeights: Object.fromEntries(classes.map((c, i) => [c, Number((weightsPerClass[i] as number).toFixed(4))])),
      durationSeconds: Math.round(seconds + earlierEpochSeconds),
      imagesPerSecond: trainingSeconds > 0 ? Number((trainedImages / trainingSeconds).toFixed(1)) : 0,
      ...(initialisedFrom ? { initialisedFrom } : {}),
    },
  });
  model.dispose();
  return { outDir: options.outDir, manifest, prepared };
}

async function resume(
  dir: string,
  model: tf.LayersModel,
  optimizer: FlatAdam,
  prepared: PreparedTaskData,
  fresh: LoopState,
  selectBy: SelectBy | undefined,
): Promise<LoopState> {
  const checkpoint = await loadCheckpoint(dir);
  if (!checkpoint) return fresh;
  if (checkpoint.state.splitFingerprint !== prepared.split.fingerprint) {
    throw new Error(`checkpoint in ${dir} was made on another split; remove it to start over`);
  }
  const trainingSet = checkpoint.state.trainingSetFingerprint;
  if (trainingSet !== undefined && trainingSet !== trainingSetFingerprint(prepared)) {
    throw new Error(`checkpoint in ${dir} was made with other training images (another --extra-train-data?); remove it to start over`);
  }
  writeWeights(model, checkpoint.latest);
  try {
    await optimizer.setWeights(checkpoint.optimizer);
  } catch {
    // Adam's moments are keyed by variable name; if they do not match, resume with fresh moments.
  }
  const { state } = checkpoint;
  // The best epoch's score, recomputed so that it compares with this run's --select-by.
  const bestRecord = state.history.find((h) => h.epoch === state.bestEpoch);
  return {
    epoch: state.epoch,
    history: state.history,
    // With --select-by last the kept weights are those the last epoch evaluated (its moving average, if kept).
    bestEpoch: selectBy === 'last' ? state.epoch : state.bestEpoch,
    bestScore: bestRecord ? validationScore({ accuracy: bestRecord.valAccuracy, loss: bestRecord.valLoss }, selectBy) : state.bestScore,
    bestWeights: selectBy === 'last' ? (checkpoint.average?.values ?? checkpoint.latest) : checkpoint.best,
    ...(checkpoint.average ? { average: checkpoint.average } : {}),
  };
}
