import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EpochRecord } from './training-loop.js';

/** What a training run needs to resume after an interruption. */
export interface CheckpointState {
  /** Last completed epoch (1-based). */
  epoch: number;
  history: EpochRecord[];
  bestEpoch: number;
  bestScore: [number, number];
  splitFingerprint: string;
  /** The training images, extra ones included (absent in checkpoints of older runs). */
  trainingSetFingerprint?: string;
  /** Shapes of the weights and optimizer variables, in file order. */
  weightShapes: number[][];
  optimizerNames: string[];
  optimizerShapes: number[][];
  /** Steps behind the weights' moving average, when the run keeps one (saved in average.weights). */
  averageSteps?: number;
  /** The run ended with this epoch (its last, or its patience ran out); absent in checkpoints of older runs. */
  finished?: boolean;
  /** The run's settings (see recordedSettings); absent in checkpoints of older runs. */
  settings?: Record<string, unknown>;
}

async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await writeFile(`${file}.tmp`, data);
  await rename(`${file}.tmp`, file);
}

function concat(arrays: Float32Array[]): Uint8Array {
  const total = arrays.reduce((n, a) => n + a.length, 0);
  const out = new Float32Array(total);
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return new Uint8Array(out.buffer);
}

function split(bytes: Buffer, shapes: number[][]): Float32Array[] {
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  let offset = 0;
  return shapes.map((shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const part = all.slice(offset, offset + n);
    offset += n;
    return part;
  });
}

/** Saves weights (latest and best) and Adam's state; the state file is written last, so it marks a complete checkpoint. */
export async function saveCheckpoint(
  dir: string,
  state: Omit<CheckpointState, 'weightShapes' | 'optimizerNames' | 'optimizerShapes' | 'averageSteps'>,
  weights: { shapes: number[][]; latest: Float32Array[]; best: Float32Array[]; average?: { values: Float32Array[]; steps: number } },
  optimizer: { getWeights(): Promise<{ name: string; tensor: tf.Tensor }[]> },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const optWeights = await optimizer.getWeights();
  const optArrays = await Promise.all(optWeights.map(async (w) => Float32Array.from(await w.tensor.data())));
  for (const w of optWeights) w.tensor.dispose();
  await writeAtomic(path.join(dir, 'latest.weights'), concat(weights.latest));
  await writeAtomic(path.join(dir, 'best.weights'), concat(weights.best));
  await writeAtomic(path.join(dir, 'optimizer.weights'), concat(optArrays));
  if (weights.average) await writeAtomic(path.join(dir, 'average.weights'), concat(weights.average.values));
  const full: CheckpointState = {
    ...state,
    ...(weights.average ? { averageSteps: weights.average.steps } : {}),
    weightShapes: weights.shapes,
    optimizerNames: optWeights.map((w) => w.name),
    optimizerShapes: optWeights.map((w) => w.tensor.shape),
  };
  await writeAtomic(path.join(dir, 'state.json'), JSON.stringify(full));
}

export interface LoadedCheckpoint {
  state: CheckpointState;
  latest: Float32Array[];
  best: Float32Array[];
  average?: { values: Float32Array[]; steps: number };
  optimizer: { name: string; tensor: tf.Tensor }[];
}

/** A checkpoint's state file alone, or undefined when the folder holds no checkpoint. */
export async function readCheckpointState(dir: string): Promise<CheckpointState | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as CheckpointState;
  } catch {
    return undefined;
  }
}

/** Reads a checkpoint, or undefined when the folder holds none. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint | undefined> {
  const state = await readCheckpointState(dir);
  if (!state) return undefined;
  const latest = split(await readFile(path.join(dir, 'latest.weights')), state.weightShapes);
  const best = split(await readFile(path.join(dir, 'best.weights')), state.weightShapes);
  const opt = split(await readFile(path.join(dir, 'optimizer.weights')), state.optimizerShapes);
  const optimizer = state.optimizerNames.map((name, i) => ({ name, tensor: tf.tensor(opt[i] as Float32Array, state.optimizerShapes[i]) }));
  const average =
    state.averageSteps === undefined
      ? undefined
      : { values: split(await readFile(path.join(dir, 'average.weights')), state.weightShapes), steps: state.averageSteps };
  return { state, latest, best, optimizer, ...(average ? { average } : {}) };
}
