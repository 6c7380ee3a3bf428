import type { PreparedTaskData } from '../data/prepare-task-data.js';
import type { Task } from '../model/tasks.js';
import { coarseLabelMasks } from './coarse-labels.js';
import { groupBalancedWeights } from './group-weights.js';
import { sourceBalancedWeights } from './source-balance.js';
import type { SampledImages } from './training-loop.js';

/** What each epoch trains on and how much each image weighs in the loss. */
export interface TrainingSamples {
  /** Each image's class index; -1 for a coarse label (see `coarse`). */
  labels: Int32Array;
  /** Per image, the classes its coarse label stands for; absent when no image has one. */
  coarse?: SharedArrayBuffer;
  /** Training images of the main dataset (indices below the split's length). */
  mainTrain: number[];
  /** Class weights that balance the main dataset's training images. */
  weightsPerClass: number[];
  /** Per-image factors on top of the class weights; absent when no option asks for them. */
  sampleWeights?: Float32Array;
  /** The images of every epoch, and the extra ones drawn afresh for each when the run samples them. */
  epoch: { train: number[]; sampled?: SampledImages };
}

export interface SampleOptions {
  task: Task;
  weightByGroup?: boolean;
  balanceExtraTrainData?: boolean;
  extraPerEpoch?: number;
}

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

export function trainingSamples(options: SampleOptions, prepared: PreparedTaskData, classes: string[]): TrainingSamples {
  const { dataset, indices, split } = prepared;
  const labels = Int32Array.from(dataset.files, (f) => classes.indexOf(f.label));
  const coarse = coarseLabelMasks(options.task, dataset.files, classes);
  // Balanced on the main dataset's training images only. Extra training data from another source
  // (its own class mix, and a look the model can tell apart) must not move the prior on the main source.
  const mainTrain = indices.train.filter((i) => i < split.assignments.length);
  const extraTrain = indices.train.filter((i) => i >= split.assignments.length);
  const weightsPerClass = classWeights(labels, mainTrain, classes.length);
  const sampleWeights = multiplied([
    options.weightByGroup ? groupBalancedWeights(labels, (i) => split.assignments[i]?.group, indices.train) : undefined,
    options.balanceExtraTrainData ? sourceBalancedWeights(labels, weightsPerClass, extraTrain) : undefined,
  ]);
  const epoch = options.extraPerEpoch !== undefined
    ? { train: mainTrain, sampled: { indices: extraTrain, perEpoch: options.extraPerEpoch } }
    : { train: indices.train };
  return { labels, ...(coarse ? { coarse } : {}), mainTrain, weightsPerClass, ...(sampleWeights ? { sampleWeights } : {}), epoch };
}
