import type { Prediction } from '@btd/model';
import type { InferenceJob, ModelTask, ResultSummary, ResultTimings } from '@btd/shared';
import { roundedTimings } from './job-timings.js';
import type { ServedModel } from './model-provider.js';

/** The prediction of one model on one image, as run by the processor. */
export interface TaskOutcome {
  model: ServedModel;
  prediction: Prediction;
}

/** One model's part of an image's result document. */
export interface TaskResultDocument {
  studyId: string;
  imageId: string;
  task: ModelTask;
  model: { name: string; version: string; contentHash: string; classes: string[] };
  label: string;
  probabilities: Record<string, number>;
  box: Prediction['box'];
  /** Hottest point of the heatmap, in original pixels. */
  peak: Prediction['peak'] | null;
  /** How far the image lies from the model's training scans, and the limit beyond which it refuses; null for a model without the check. */
  typicality: NonNullable<Prediction['typicality']> | null;
  timings: Prediction['timings'];
  finishedAt: string;
}

/** Contents of `results/<imageId>/result.json`: every model's result, written in one put. */
export interface ImageResultDocument {
  studyId: string;
  imageId: string;
  finishedAt: string;
  tasks: Partial<Record<ModelTask, TaskResultDocument>>;
}

/** Builds an image's result document from its models' outcomes. */
export function imageResultDocument(job: InferenceJob, outcomes: readonly TaskOutcome[], finishedAt: string): ImageResultDocument {
  const tasks: ImageResultDocument['tasks'] = {};
  for (const outcome of outcomes) tasks[outcome.model.task] = taskResultDocument(job, outcome, finishedAt);
  return { studyId: job.studyId, imageId: job.imageId, finishedAt, tasks };
}

/** Builds one model's result document. Heatmap values stay out: the overlay PNG shows them. */
export function taskResultDocument(job: InferenceJob, outcome: TaskOutcome, finishedAt: string): TaskResultDocument {
  const { model, prediction } = outcome;
  return {
    studyId: job.studyId,
    imageId: job.imageId,
    task: model.task,
    model: { name: model.manifest.name, version: model.version, contentHash: model.contentHash, classes: [...model.manifest.classes] },
    label: prediction.label,
    probabilities: prediction.probabilities,
    box: prediction.box,
    peak: prediction.peak ?? null,
    typicality: prediction.typicality ?? null,
    timings: prediction.timings,
    finishedAt,
  };
}

/**
 * Probability of "tumour" from the binary model. Models name the negative class `no_tumor`, so
 * the complement also works for a model whose positive class has another name.
 */
export function tumorProbability(probabilities: Record<string, number>): number {
  if (probabilities.tumor !== undefined) return probabilities.tumor;
  if (probabilities.no_tumor !== undefined) return 1 - probabilities.no_tumor;
  throw new Error(`binary model has neither a tumor nor a no_tumor class: ${Object.keys(probabilities).join(', ')}`);
}

/**
 * Builds the summary the API stores and shows for an image. `timings` are the job's, measured on its
 * own clock (see `analysisTimings`), before rounding.
 */
export function resultSummary(binary: TaskOutcome, type: TaskOutcome, timings: ResultTimings): ResultSummary {
  const both = [binary, type];
  return {
    label: binary.prediction.label,
    tumorProbability: tumorProbability(binary.prediction.probabilities),
    probabilities: binary.prediction.probabilities,
    typeLabel: type.prediction.label,
    typeProbabilities: type.prediction.probabilities,
    box: binary.prediction.box,
    models: both.map(({ model }) => ({ task: model.task, name: model.manifest.name, version: model.version })),
    timings: roundedTimings(timings),
  };
}
