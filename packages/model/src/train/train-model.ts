import type * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend/index.js';
import { prepareTaskData, trainingSetFingerprint, type PreparedTaskData } from '../data/prepare-task-data.js';
import { readSplitFile } from '../data/split-file.js';
import { buildClassifier, type ArchitectureConfig } from '../model/architecture.js';
import type { ModelManifest } from '../model/manifest.js';
import { saveCheckpoint } from './checkpoint.js';
import { CheckpointUnusableError } from './checkpoint-unusable.error.js';
import type { FlatAdam } from './flat-adam.js';
import { GradientWorkerPool } from './gradient-worker-pool.js';
import { initialiseFrom } from './initial-weights.js';
import { outlineGuidanceFor } from './outline-guidance.js';
import { recordedSettings, settingsToResume, type RecordedSettings } from './resume-settings.js';
import { resumeTraining } from './resume-training.js';
import { InvalidOptionsError } from './invalid-options.error.js';
import { architectureFor, checkTrainOptions, runSettings, type RunSettings, type TrainOptions } from './train-options.js';
import { adamFor, readWeights, runTrainingLoop, writeWeights, type LoopState } from './training-loop.js';
import { trainingRecord } from './training-record.js';
import { trainingSamples, type TrainingSamples } from './training-samples.js';
import type { WorkerInit } from './worker-protocol.js';
import { writeTrainedArtifact } from './write-artifact.js';

export { DEFAULT_AVERAGE_DECAY, type TrainOptions } from './train-options.js';

export interface TrainResult {
  outDir: string;
  manifest: ModelManifest;
  prepared: PreparedTaskData;
}

/** What the epochs of a run train, on what data. */
interface RunParts {
  model: tf.LayersModel;
  architecture: ArchitectureConfig;
  prepared: PreparedTaskData;
  samples: TrainingSamples;
  guidance?: NonNullable<WorkerInit['outlineGuidance']>;
}

/**
 * Runs a step of resuming the checkpoint in `dir`. Whatever stops it is a {@link CheckpointUnusableError}
 * (options that cannot make a run excepted), so that a caller can tell a checkpoint that will never
 * resume from a run that failed after it resumed.
 */
async function resuming<T>(dir: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw error instanceof InvalidOptionsError ? error : new CheckpointUnusableError(dir, error);
  }
}

/**
 * Trains a task's model on all cores, keeps the best epoch by validation, evaluates it and writes the artifact.
 * Options that cannot make a run are refused with {@link InvalidOptionsError}, a checkpoint that cannot be
 * resumed with {@link CheckpointUnusableError}.
 */
export async function trainModel(options: TrainOptions): Promise<TrainResult> {
  checkTrainOptions(options);
  const savedSplit = options.splitFile ? await readSplitFile(options.splitFile) : undefined;
  if (savedSplit && !savedSplit.assignments.some((a) => a.split === 'val') && options.selectBy !== 'last') {
    throw new InvalidOptionsError(`${options.splitFile} puts no images in validation, so nothing can pick the best epoch or stop early: add --select-by last`);
  }
  const started = Date.now();
  const backend = await initBackend({ prefer: options.backend });
  const asked = runSettings(options);
  // A checkpoint made under other settings is refused before the data is read.
  const { resumeFrom } = options;
  const run = resumeFrom ? await resuming(resumeFrom, () => settingsToResume(resumeFrom, options, asked)) : asked;
  const prepared = await prepareTaskData({
    ...options,
    inputSize: run.inputSize,
    seed: run.splitSeed,
    savedSplit,
  });
  const samples = trainingSamples(options, prepared, run.classes);
  if (samples.coarse && (options.mixup ?? 0) > 0) throw new InvalidOptionsError('--mixup cannot blend coarse labels (e.g. yes for any tumour type) of --extra-train-data');
  const architecture = architectureFor(options, run);
  const model = buildClassifier(architecture, run.seed);
  try {
    return await trainBuilt(options, run, started, { model, architecture, prepared, samples }, backend.name);
  } finally {
    model.dispose();
  }
}

/** Trains the network built for the run and writes its artifact. */
async function trainBuilt(options: TrainOptions, run: RunSettings, started: number, parts: RunParts, backend: string): Promise<TrainResult> {
  const { model, architecture, prepared, samples } = parts;
  const initialisedFrom = options.initFrom ? await initialiseFrom(options.initFrom, model, runIdentity(options, prepared), { classes: run.classes, member: options.initMember }) : undefined;
  const guidance = options.outlineGuidance && options.outlinesFile
    ? await outlineGuidanceFor(prepared.dataset, samples.labels, samples.mainTrain, options.outlinesFile, options.outlineGuidance)
    : undefined;
  const { state, earlierSeconds } = await trainEpochs(options, run, { ...parts, ...(guidance ? { guidance: guidance.init } : {}) });
  writeWeights(model, state.bestWeights);
  const seconds = (Date.now() - started) / 1000 + earlierSeconds;
  const manifest = await writeTrainedArtifact({
    model,
    options: { ...options, inputSize: run.inputSize },
    classes: run.classes,
    architecture,
    backend,
    prepared,
    history: state.history,
    training: trainingRecord(options, run, { state, samples, seconds, ...(guidance ? { outlineGuidance: guidance.record } : {}), ...(initialisedFrom ? { initialisedFrom } : {}) }),
  });
  return { outDir: options.outDir, manifest, prepared };
}

/** What initialiseFrom checks a source artifact against: this run's data and split. */
function runIdentity(options: TrainOptions, prepared: PreparedTaskData): Parameters<typeof initialiseFrom>[2] {
  const reused = prepared.reusedSplit;
  return {
    dataDir: options.dataDir,
    splitFingerprint: prepared.split.fingerprint,
    ...(reused ? { reusedSplit: { fingerprint: reused.fingerprint, movedOutOfTraining: reused.movedOutOfTraining.length } } : {}),
  };
}

/**
 * Runs the epochs on a pool of gradient workers (from a checkpoint when told to resume), writing a
 * checkpoint after each when told to. Returns the loop's final state and the seconds that a resumed
 * run's earlier epochs took.
 */
async function trainEpochs(options: TrainOptions, run: RunSettings, parts: RunParts): Promise<{ state: LoopState; earlierSeconds: number }> {
  const { model, prepared, samples } = parts;
  const optimizer = adamFor(model);
  const pool = await startGradientWorkers(options, run, parts);
  let state: LoopState = { epoch: 0, history: [], bestEpoch: 0, bestScore: [-1, -Infinity], bestWeights: readWeights(model) };
  try {
    const { resumeFrom } = options;
    if (resumeFrom) state = await resuming(resumeFrom, () => resumeTraining(resumeFrom, model, optimizer, prepared, options.selectBy));
    const earlierSeconds = state.history.reduce((sum, h) => sum + h.seconds, 0);
    const settings = recordedSettings(options, run, parts.architecture);
    const checkpoint = options.checkpointDir ? checkpointWriter(options.checkpointDir, { model, optimizer, prepared, settings }) : undefined;
    state = await runTrainingLoop(
      model,
      optimizer,
      pool,
      { ...samples.epoch, val: prepared.indices.val, labels: samples.labels, numClasses: run.classes.length },
      {
        epochs: run.epochs,
        batchSize: run.batchSize,
        learningRate: run.learningRate,
        patience: options.patience ?? 10,
        warmupEpochs: 1,
        averageDecay: run.averageDecay,
        sharpness: options.sharpness,
        selectBy: options.selectBy,
        seed: run.seed,
        signal: options.signal,
        onStep: options.onStep,
        onEpoch: async (record, isBest) => {
          await checkpoint?.(state);
          options.onEpoch?.({ ...record, epochs: run.epochs, isBest });
        },
      },
      state,
    );
    return { state, earlierSeconds };
  } finally {
    await pool.close();
  }
}

/** One worker thread per core (or as told), each with its own backend, the images in shared memory. */
async function startGradientWorkers(options: TrainOptions, run: RunSettings, parts: RunParts): Promise<GradientWorkerPool> {
  const { model, architecture, prepared, samples, guidance } = parts;
  const pixels = new SharedArrayBuffer(prepared.dataset.pixels.byteLength);
  new Uint8Array(pixels).set(prepared.dataset.pixels);
  return GradientWorkerPool.start(run.workers, {
    type: 'init',
    topology: JSON.stringify(model.toJSON(null, false)),
    pixels,
    labels: samples.labels,
    ...(samples.coarse ? { coarse: samples.coarse } : {}),
    size: run.inputSize,
    numClasses: run.classes.length,
    classWeights: samples.weightsPerClass,
    ...(samples.sampleWeights ? { sampleWeights: samples.sampleWeights } : {}),
    ...(guidance ? { outlineGuidance: guidance } : {}),
    labelSmoothing: 0.05,
    mixup: options.mixup ?? 0,
    l2: architecture.l2,
    augmentation: run.augmentation,
    backend: options.backend,
  });
}

/** Saves the loop's state and the run's settings, the latest, best and averaged weights and Adam's moments in `dir`. */
function checkpointWriter(
  dir: string,
  { model, optimizer, prepared, settings }: { model: tf.LayersModel; optimizer: FlatAdam; prepared: PreparedTaskData; settings: RecordedSettings },
): (state: LoopState) => Promise<void> {
  const shapes = model.weights.map((w) => w.shape as number[]);
  return (state) =>
    saveCheckpoint(
      dir,
      {
        epoch: state.epoch,
        history: state.history,
        bestEpoch: state.bestEpoch,
        bestScore: state.bestScore,
        splitFingerprint: prepared.split.fingerprint,
        trainingSetFingerprint: trainingSetFingerprint(prepared),
        finished: state.finished === true,
        settings,
      },
      { shapes, latest: readWeights(model), best: state.bestWeights, ...(state.average ? { average: state.average } : {}) },
      optimizer,
    );
}
