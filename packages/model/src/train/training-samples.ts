import type { PreparedTaskData } from '../data/prepare-task-data.js';
import { classOfFolder, type Task } from '../model/tasks.js';
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
  dataDir: string;
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

/** How many unreadable files of a class the error of checkEveryClassTrains names; the rest are counted. */
const UNREADABLE_NAMED = 3;

/** Why the main dataset gives no training image of class `name`. */
function whyNoTrainingImage(options: SampleOptions, prepared: PreparedTaskData, name: string): string {
  const { dataset, split, excluded } = prepared;
  const images = dataset.files.slice(0, split.assignments.length).filter((f) => f.label === name).length;
  if (images > 0) return `${name}: its ${images} images all went to validation or test`;
  const ofClass = (relPath: string) => classOfFolder(options.task, relPath.split('/')[0] ?? '') === name;
  const unreadable = dataset.rejected.filter((r) => ofClass(r.relPath));
  const held = excluded?.dropped.filter(ofClass).length ?? 0;
  if (unreadable.length === 0 && held === 0) return `${name}: its folder is empty or missing`;
  const named = unreadable.slice(0, UNREADABLE_NAMED).map((r) => `${r.relPath} (${r.reason})`);
  const more = unreadable.length > UNREADABLE_NAMED ? `, and ${unreadable.length - UNREADABLE_NAMED} more` : '';
  return [
    ...(unreadable.length > 0 ? [`${name}: none of its ${unreadable.length} files could be read: ${named.join(', ')}${more}`] : []),
    ...(held > 0 ? [`${name}: ${held} images held out as near-duplicates of ${excluded?.dir}`] : []),
  ].join('; ');
}

/**
 * Refuses a run without a training image of some class of the task: it would train a model that
 * never predicts that class (its class weight is 0), and write an artifact all the same.
 */
function checkEveryClassTrains(options: SampleOptions, prepared: PreparedTaskData, classes: string[], labels: Int32Array, mainTrain: number[]): void {
  const absent = classes.filter((_, c) => !mainTrain.some((i) => labels[i] === c));
  if (absent.length === 0) return;
  const why = absent.map((name) => whyNoTrainingImage(options, prepared, name));
  throw new Error(`cannot train ${options.task} on ${options.dataDir}: every class needs training images, and ${absent.join(' and ')} ${absent.length > 1 ? 'have' : 'has'} none (${why.join('; ')})`);
}

export function trainingSamples(options: SampleOptions, prepared: PreparedTaskData, classes: string[]): TrainingSamples {
  const { dataset, indices, split } = prepared;
  const labels = Int32Array.from(dataset.files, (f) => classes.indexOf(f.label));
  const coarse = coarseLabelMasks(options.task, dataset.files, classes);
  // Balanced on the main dataset's training images only. Extra training data from another source
  // (its own class mix, and a look the model can tell apart) must not move the prior on the main source.
  const mainTrain = indices.train.filter((i) => i < split.assignments.length);
  const extraTrain = indices.train.filter((i) => i >= split.assignments.length);
  checkEveryClassTrains(options, prepared, classes, labels, mainTrain);
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
