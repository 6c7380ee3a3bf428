import * as tf from '@tensorflow/tfjs';
import { createRandom, shuffleInPlace } from '../util/random.js';
import { FlatAdam } from './flat-adam.js';
import type { GradientWorkerPool } from './gradient-worker-pool.js';
import { sharpnessProbe } from './sharpness.js';
import { WeightAverage } from './weight-average.js';
import type { StepResult } from './worker-protocol.js';

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  learningRate: number;
  seconds: number;
}

/** What picks the epoch kept: validation accuracy or loss, or none (`last`: a fixed schedule's final epoch). */
export type SelectBy = 'accuracy' | 'loss' | 'last';

export interface LoopOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Stop when validation has not improved for this many epochs. */
  patience: number;
  warmupEpochs: number;
  /** Decay of the weights' moving average that validation and the best checkpoint use; 0 or absent: none. */
  averageDecay?: number;
  /** Sharpness-aware minimisation's radius rho (see `sharpness.ts`); 0 or absent: plain steps. */
  sharpness?: number;
  /**
   * What picks the best epoch (and early stopping): validation accuracy with the loss breaking ties
   * (default), or validation loss with the accuracy breaking ties.
   */
  selectBy?: SelectBy;
  seed: number;
  signal?: AbortSignal;
  onEpoch?: (record: EpochRecord, isBest: boolean) => void | Promise<void>;
  onStep?: (done: number, total: number, loss: number) => void;
}

export interface LoopState {
  epoch: number;
  history: EpochRecord[];
  bestEpoch: number;
  /** [val accuracy, −val loss], or [−val loss, val accuracy] when selecting by loss: compared lexicographically. */
  bestScore: [number, number];
  bestWeights: Float32Array[];
  /** Moving average of the weights, when the loop keeps one. */
  average?: { values: Float32Array[]; steps: number };
  /** The run ended with `epoch`: its last epoch, or its patience ran out. Resumed, it trains no further. */
  finished?: boolean;
}

/** Cosine decay to 5% after a linear warm-up; per step. */
export function learningRateAt(step: number, stepsPerEpoch: number, options: LoopOptions): number {
  const warmup = options.warmupEpochs * stepsPerEpoch;
  const total = options.epochs * stepsPerEpoch;
  if (step < warmup) return options.learningRate * ((step + 1) / warmup);
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return options.learningRate * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export function readWeights(model: tf.LayersModel): Float32Array[] {
  return model.weights.map((w) => (w.read().dataSync() as Float32Array).slice());
}

export function writeWeights(model: tf.LayersModel, weights: Float32Array[]): void {
  tf.tidy(() => model.weights.forEach((w, i) => w.write(tf.tensor(weights[i] as Float32Array, w.shape as number[]))));
}

/**
 * Whether a run at `state` has met its stopping rule: `patience` epochs since its best one. A run
 * that keeps its last epoch (select-by `last`) has its last epoch as best, so never meets it.
 */
export function patienceRanOut(state: Pick<LoopState, 'epoch' | 'bestEpoch'>, patience: number): boolean {
  return state.epoch > 0 && state.epoch - state.bestEpoch >= patience;
}

/** Whether validation score `a` beats `b` (see validationScore). */
export const better = (a: [number, number], b: [number, number]) => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

/** The validation score `better` compares: the selecting metric first (higher is better), then the other. */
export function validationScore(val: { accuracy: number; loss: number }, selectBy: SelectBy = 'accuracy'): [number, number] {
  return selectBy === 'loss' ? [-val.loss, val.accuracy] : [val.accuracy, -val.loss];
}

/** Copies of the arrays in one SharedArrayBuffer: posted to the workers, they share it instead of copying it. */
function inSharedMemory(arrays: Float32Array[]): Float32Array[] {
  const buffer = new SharedArrayBuffer(arrays.reduce((n, a) => n + a.byteLength, 0));
  let offset = 0;
  return arrays.map((a) => {
    const view = new Float32Array(buffer, offset, a.length);
    view.set(a);
    offset += a.byteLength;
    return view;
  });
}

/** Indices into `model.weights` of the trainable and the non-trainable (batch-norm statistics) weights. */
export function weightPositions(model: tf.LayersModel): { trainable: number[]; nonTrainable: number[] } {
  const position = new Map(model.weights.map((w, i) => [w.name, i]));
  const at = (w: tf.LayerVariable) => position.get(w.name) as number;
  return { trainable: model.trainableWeights.map(at), nonTrainable: model.nonTrainableWeights.map(at) };
}

/**
 * An Adam for a model's trainable weights, in the order the gradient workers return them. Its state
 * is keyed by the weights' names as the network names them: tfjs adds a suffix (`_1`, …) to a name
 * already taken in the process, so a checkpoint resumed in a process that built other networks
 * before would otherwise match none of its moments.
 */
export function adamFor(model: tf.LayersModel): FlatAdam {
  return new FlatAdam(model.trainableWeights.map((w) => ({ name: w.originalName, size: (w.shape as number[]).reduce((a, b) => a * b, 1) })));
}

/** Images drawn afresh each epoch, without replacement, from a larger pool (e.g. extra training data). */
export interface SampledImages {
  indices: number[];
  perEpoch: number;
}

/**
 * One epoch's training images in the order they are used: every image of `train`, plus `perEpoch` of
 * `sampled` drawn anew; without `sampled` the same order as shuffling `train` alone.
 */
export function epochImages(train: readonly number[], sampled: SampledImages | undefined, random: () => number): number[] {
  const drawn = sampled ? shuffleInPlace([...sampled.indices], random).slice(0, sampled.perEpoch) : [];
  return shuffleInPlace([...train, ...drawn], random);
}

/** How many images an epoch trains on. */
export function imagesPerEpoch(train: readonly number[], sampled: SampledImages | undefined): number {
  return train.length + (sampled ? Math.min(sampled.perEpoch, sampled.indices.length) : 0);
}

type LoopData = { train: number[]; sampled?: SampledImages; val: number[]; labels: Int32Array; numClasses: number; targets?: Float32Array };

/** What every step of a loop updates: the weights in shared memory, Adam, the moving average. */
interface LoopContext {
  pool: GradientWorkerPool;
  optimizer: FlatAdam;
  positions: { trainable: number[]; nonTrainable: number[] };
  /** The weights after the latest update: sent with the next step, and what the average follows. */
  current: Float32Array[];
  trainable: Float32Array[];
  /** Sharpness-aware steps take their gradient at these moved weights (batch-norm statistics as in `current`). */
  probe?: ReturnType<typeof sharpnessWeights>;
  average?: WeightAverage;
}

/**
 * Synchronous data-parallel training: each step splits the batch over the workers, averages their
 * gradients (weighted by shard size) and batch-norm statistics, and applies Adam once in this thread.
 * The weights live in shared memory during the loop and are written to the model after every epoch.
 */
export async function runTrainingLoop(
  model: tf.LayersModel,
  optimizer: FlatAdam,
  pool: GradientWorkerPool,
  data: LoopData,
  options: LoopOptions,
  state: LoopState,
): Promise<LoopState> {
  // A checkpoint of a finished run (one that stopped early too) resumes to that same end, whatever
  // now picks the kept epoch; one written before checkpoints said so, to the stop its patience makes.
  if (state.finished || patienceRanOut(state, options.patience)) return state;
  const positions = weightPositions(model);
  const current = inSharedMemory(readWeights(model));
  const ctx: LoopContext = {
    pool,
    optimizer,
    positions,
    current,
    trainable: positions.trainable.map((i) => current[i] as Float32Array),
    ...(options.sharpness ? { probe: sharpnessWeights(current, positions, options.sharpness) } : {}),
    ...(options.averageDecay
      ? { average: new WeightAverage(options.averageDecay, state.average?.values ?? readWeights(model), state.average?.steps ?? 0) }
      : {}),
  };
  for (let epoch = state.epoch + 1; epoch <= options.epochs; epoch++) {
    if (options.signal?.aborted) throw new Error('training aborted');
    const started = Date.now();
    const trained = await trainEpoch(ctx, epoch, data, options);
    writeWeights(model, current);
    const evaluated = ctx.average ? ctx.average.snapshot() : current.map((w) => w.slice());
    if (ctx.average) state.average = { values: evaluated, steps: ctx.average.steps };
    const val = await validate(evaluated, pool, data);
    const record: EpochRecord = {
      epoch,
      loss: trained.loss,
      accuracy: trained.accuracy,
      valLoss: val.loss,
      valAccuracy: val.accuracy,
      learningRate: trained.learningRate,
      seconds: (Date.now() - started) / 1000,
    };
    state.history.push(record);
    state.epoch = epoch;
    const score = validationScore(val, options.selectBy);
    const isBest = options.selectBy === 'last' || state.bestEpoch === 0 || better(score, state.bestScore);
    if (isBest) {
      state.bestEpoch = epoch;
      state.bestScore = score;
      state.bestWeights = evaluated;
    }
    state.finished = epoch === options.epochs || patienceRanOut(state, options.patience);
    await options.onEpoch?.(record, isBest);
    if (state.finished) break;
  }
  return state;
}

/** One epoch's steps; its training loss and accuracy, and the learning rate of its last step. */
async function trainEpoch(ctx: LoopContext, epoch: number, data: LoopData, options: LoopOptions): Promise<Pick<EpochRecord, 'loss' | 'accuracy' | 'learningRate'>> {
  const stepsPerEpoch = Math.ceil(imagesPerEpoch(data.train, data.sampled) / options.batchSize);
  const order = epochImages(data.train, data.sampled, createRandom(options.seed * 1000 + epoch));
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  let lr = options.learningRate;
  for (let s = 0; s < stepsPerEpoch; s++) {
    if (options.signal?.aborted) throw new Error('training aborted');
    lr = learningRateAt((epoch - 1) * stepsPerEpoch + s, stepsPerEpoch, options);
    const batch = order.slice(s * options.batchSize, (s + 1) * options.batchSize);
    const results = await trainStep(ctx, batch, options.seed * 1_000_003 + epoch * 10_007 + s, lr);
    for (const r of results) {
      lossSum += r.loss * r.count;
      correct += r.correct;
      seen += r.count;
    }
    options.onStep?.(s + 1, stepsPerEpoch, lossSum / seen);
  }
  return { loss: lossSum / seen, accuracy: correct / seen, learningRate: lr };
}

/** One Adam update from the batch's gradients, averaged over the workers' shards; returns what each worker measured. */
async function trainStep(ctx: LoopContext, batch: number[], seed: number, lr: number): Promise<StepResult[]> {
  const { pool, positions, current, probe } = ctx;
  const shards = Array.from({ length: pool.size }, (_, w) => Int32Array.from(batch.filter((_, i) => i % pool.size === w)));
  const results = await pool.step(current, shards, seed);
  const total = results.reduce((n, r) => n + r.count, 0);
  const shares = results.map((r) => r.count / total);
  let update = results;
  if (probe) {
    positions.nonTrainable.forEach((i) => (probe.all[i] as Float32Array).set(current[i] as Float32Array));
    sharpnessProbe(ctx.trainable, results.map((r) => r.grads), shares, probe.rho, probe.trainable);
    // Same images and augmentation; the loss, accuracy and batch-norm statistics stay those at `current`.
    update = await pool.step(probe.all, shards, seed);
  }
  ctx.optimizer.apply(
    ctx.trainable,
    update.map((r) => r.grads),
    shares,
    lr,
  );
  averageStatistics(positions.nonTrainable.map((i) => current[i] as Float32Array), results);
  ctx.average?.update(current);
  return results;
}

/** A second set of weights in shared memory for sharpness-aware steps, with views of its trainable ones. */
function sharpnessWeights(current: Float32Array[], positions: { trainable: number[] }, rho: number) {
  const all = inSharedMemory(current);
  return { rho, all, trainable: positions.trainable.map((i) => all[i] as Float32Array) };
}

/** Batch-norm statistics: the plain mean of what each worker measured on its shard. */
function averageStatistics(statistics: Float32Array[], results: StepResult[]): void {
  statistics.forEach((out, k) => {
    out.fill(0);
    for (const r of results) {
      const values = r.nonTrainable[k] as Float32Array;
      for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + (values[i] as number) / results.length;
    }
  });
}

async function validate(
  weights: Float32Array[],
  pool: GradientWorkerPool,
  data: { val: number[]; labels: Int32Array; numClasses: number; targets?: Float32Array },
): Promise<{ loss: number; accuracy: number }> {
  if (data.val.length === 0) return { loss: Number.NaN, accuracy: Number.NaN };
  const chunks = await pool.predict(weights, Int32Array.from(data.val));
  const k = data.numClasses;
  let loss = 0;
  let correct = 0;
  let i = 0;
  for (const chunk of chunks) {
    for (let r = 0; r < chunk.length / k; r++, i++) {
      const index = data.val[i] as number;
      const label = data.labels[index] as number;
      const row = chunk.subarray(r * k, (r + 1) * k);
      let best = 0;
      for (let c = 1; c < k; c++) if ((row[c] as number) > (row[best] as number)) best = c;
      if (data.targets) {
        const target = data.targets.subarray(index * k, (index + 1) * k);
        for (let c = 0; c < k; c++) loss -= (target[c] as number) * Math.log(Math.max(1e-7, row[c] as number));
        if ((target[best] as number) > 0) correct++;
      } else {
        loss -= Math.log(Math.max(1e-7, row[label] as number));
        if (best === label) correct++;
      }
    }
  }
  return { loss: loss / data.val.length, accuracy: correct / data.val.length };
}
