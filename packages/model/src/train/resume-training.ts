import type * as tf from '@tensorflow/tfjs';
import { trainingSetFingerprint, type PreparedTaskData } from '../data/prepare-task-data.js';
import { loadCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import type { FlatAdam } from './flat-adam.js';
import { noCheckpointError } from './resume-settings.js';
import { validationScore, writeWeights, type LoopState, type SelectBy } from './training-loop.js';

/**
 * The loop state of a checkpoint in `dir`, with its weights and Adam's moments loaded into the
 * model and optimizer. Refused when there is none, or when it was made on another split, with other
 * training images or for another network.
 */
export async function resumeTraining(
  dir: string,
  model: tf.LayersModel,
  optimizer: FlatAdam,
  prepared: PreparedTaskData,
  selectBy: SelectBy | undefined,
): Promise<LoopState> {
  const checkpoint = await loadCheckpoint(dir);
  if (!checkpoint) throw noCheckpointError(dir);
  try {
    return await restore(dir, checkpoint, model, optimizer, prepared, selectBy);
  } finally {
    for (const { tensor } of checkpoint.optimizer) tensor.dispose();
  }
}

async function restore(
  dir: string,
  checkpoint: LoadedCheckpoint,
  model: tf.LayersModel,
  optimizer: FlatAdam,
  prepared: PreparedTaskData,
  selectBy: SelectBy | undefined,
): Promise<LoopState> {
  if (checkpoint.state.splitFingerprint !== prepared.split.fingerprint) {
    throw new Error(`checkpoint in ${dir} was made on another split; remove it to start over`);
  }
  const trainingSet = checkpoint.state.trainingSetFingerprint;
  if (trainingSet !== undefined && trainingSet !== trainingSetFingerprint(prepared)) {
    throw new Error(`checkpoint in ${dir} was made with other training images (another --extra-train-data?); remove it to start over`);
  }
  const shapes = model.weights.map((w) => (w.shape as number[]).join('×'));
  const recordedShapes = checkpoint.state.weightShapes.map((shape) => shape.join('×'));
  const differs = Array.from({ length: Math.max(recordedShapes.length, shapes.length) }, (_, i) => i).find((i) => recordedShapes[i] !== shapes[i]);
  if (differs !== undefined) {
    throw new Error(`checkpoint in ${dir} holds the weights of another network (weight ${differs + 1} is ${recordedShapes[differs] ?? 'absent'} there, ${shapes[differs] ?? 'absent'} here); remove it to start over`);
  }
  writeWeights(model, checkpoint.latest);
  // Adam's moments are keyed by the weights' names: a checkpoint of this network holds every one.
  const missing = await optimizer.setWeights(checkpoint.optimizer);
  if (missing.length > 0) {
    throw new Error(`checkpoint in ${dir} holds no optimizer state for ${missing.length} of this network's weights (e.g. ${missing[0]}); remove it to start over`);
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
    ...(state.finished ? { finished: true } : {}),
  };
}
