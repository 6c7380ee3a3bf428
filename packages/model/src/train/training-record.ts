import type { InitialWeightsRecord, TrainingRecord } from '../model/manifest.js';
import type { RunSettings, TrainOptions } from './train-options.js';
import type { TrainingSamples } from './training-samples.js';
import { imagesPerEpoch, type LoopState } from './training-loop.js';

/** How a finished run went, besides its settings. */
export interface RunOutcome {
  state: LoopState;
  samples: TrainingSamples;
  /** Wall time of the whole run in seconds, a resumed run's earlier epochs included. */
  seconds: number;
  outlineGuidance?: { weight: number; outlinedImages: number };
  initialisedFrom?: InitialWeightsRecord;
}

/** The manifest's `training`: what the run was told, with its defaults, and what it did. */
export function trainingRecord(options: TrainOptions, run: RunSettings, outcome: RunOutcome): TrainingRecord {
  const { state, samples } = outcome;
  const trainedImages = state.history.length * imagesPerEpoch(samples.epoch.train, samples.epoch.sampled);
  const trainingSeconds = state.history.reduce((s, h) => s + h.seconds, 0);
  return {
    command: options.command,
    epochs: run.epochs,
    epochsRun: state.history.length,
    bestEpoch: state.bestEpoch,
    batchSize: run.batchSize,
    learningRate: run.learningRate,
    averageDecay: run.averageDecay,
    seed: run.seed,
    workers: run.workers,
    augmentation: { ...run.augmentation },
    ...(options.mixup ? { mixup: options.mixup } : {}),
    ...(options.weightByGroup ? { weightByGroup: true } : {}),
    ...(options.balanceExtraTrainData ? { balanceExtraTrainData: true } : {}),
    ...(options.extraPerEpoch !== undefined ? { extraPerEpoch: options.extraPerEpoch } : {}),
    ...(outcome.outlineGuidance ? { outlineGuidance: outcome.outlineGuidance } : {}),
    ...(options.sharpness ? { sharpness: options.sharpness } : {}),
    ...(options.selectBy === 'loss' || options.selectBy === 'last' ? { selectBy: options.selectBy } : {}),
    classWeights: Object.fromEntries(run.classes.map((c, i) => [c, Number((samples.weightsPerClass[i] as number).toFixed(4))])),
    durationSeconds: Math.round(outcome.seconds),
    imagesPerSecond: trainingSeconds > 0 ? Number((trainedImages / trainingSeconds).toFixed(1)) : 0,
    ...(outcome.initialisedFrom ? { initialisedFrom: outcome.initialisedFrom } : {}),
  };
}
