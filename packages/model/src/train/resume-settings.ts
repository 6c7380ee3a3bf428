import type { ArchitectureConfig } from '../model/architecture.js';
import { readCheckpointState } from './checkpoint.js';
import { architectureFor, type RunSettings, type TrainOptions } from './train-options.js';

/** The settings a checkpoint records of its run, each by the `btd train` option that sets it. */
const RECORDED = {
  inputSize: '--input-size',
  claheMaxSlope: '--clahe',
  filters: '--filters',
  convsPerBlock: '--convs-per-block',
  residual: '--residual',
  epochs: '--epochs',
  batchSize: '--batch-size',
  learningRate: '--lr',
  seed: '--seed',
  averageDecay: '--average-decay',
  workers: '--workers',
  augmentation: '--augmentation',
  dropout: '--dropout',
  mixup: '--mixup',
  sharpness: '--sharpness',
  selectBy: '--select-by',
  weightByGroup: '--weight-by-group',
  balanceExtraTrainData: '--balance-extra-train-data',
  extraPerEpoch: '--extra-per-epoch',
  outlineGuidance: '--outline-guidance',
} as const;

type Setting = keyof typeof RECORDED;
type Value = number | string | boolean | null | number[] | Record<string, number | boolean>;
export type RecordedSettings = Record<Setting, Value>;

/**
 * What shapes a run's epochs (and its network), with the defaults filled in, as its checkpoints
 * record it. Not the patience: a run that has not stopped yet trains the same epochs whatever it is.
 */
export function recordedSettings(options: TrainOptions, run: RunSettings, architecture: ArchitectureConfig): RecordedSettings {
  return {
    inputSize: run.inputSize,
    claheMaxSlope: options.claheMaxSlope ?? 0,
    filters: architecture.filters,
    convsPerBlock: architecture.convsPerBlock,
    residual: architecture.residual === true,
    epochs: run.epochs,
    batchSize: run.batchSize,
    learningRate: run.learningRate,
    seed: run.seed,
    averageDecay: run.averageDecay,
    workers: run.workers,
    augmentation: { ...run.augmentation },
    dropout: architecture.dropout,
    mixup: options.mixup ?? 0,
    sharpness: options.sharpness ?? 0,
    selectBy: options.selectBy ?? 'accuracy',
    weightByGroup: options.weightByGroup === true,
    balanceExtraTrainData: options.balanceExtraTrainData === true,
    extraPerEpoch: options.extraPerEpoch ?? null,
    outlineGuidance: options.outlineGuidance ?? 0,
  };
}

/** Settings a finished run's checkpoint may be resumed under: it trains no further, and these only pick what it keeps or run it. */
const FREE_WHEN_FINISHED: readonly Setting[] = ['workers', 'selectBy'];

/** A recorded value as the option takes it: `8,16`, `rotateDeg=20`, `on`. */
function shown(value: Value | undefined): string {
  if (value === null || value === undefined) return 'not given';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => `${k}=${String(v)}`).join(',');
  return String(value);
}

const isRecord = (value: Value | undefined): value is Record<string, number | boolean> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A setting that differs: its option, the checkpoint's value and this run's (of an object, the keys that differ). */
function difference(setting: Setting, recorded: Value | undefined, now: Value): string {
  if (isRecord(recorded) && isRecord(now)) {
    const keys = [...new Set([...Object.keys(recorded), ...Object.keys(now)])].filter((k) => recorded[k] !== now[k]);
    const part = (o: Record<string, number | boolean>) => keys.map((k) => `${k}=${o[k] === undefined ? 'not given' : String(o[k])}`).join(',');
    return `${RECORDED[setting]} ${part(recorded)} (now ${part(now)})`;
  }
  return `${RECORDED[setting]} ${shown(recorded)} (now ${shown(now)})`;
}

export const noCheckpointError = (dir: string) => new Error(`no checkpoint to resume in ${dir} (no readable state.json)`);

/**
 * The settings to resume the checkpoint in `dir` with, checked before any data is read. A run
 * resumes only under the settings it was made with, or its epochs would not be those of the
 * uninterrupted run: refused, naming each setting that differs. A finished run's checkpoint trains
 * no further, so it may be resumed with other workers or select-by. Without `workers` asked for,
 * the checkpoint's number serves (the default, one per core, depends on the machine). Checkpoints
 * written before they recorded their settings resume as they are.
 */
export async function settingsToResume(dir: string, options: TrainOptions, run: RunSettings): Promise<RunSettings> {
  const state = await readCheckpointState(dir);
  // Told to resume, a run never starts over in silence: a mistyped folder would cost a whole training.
  if (!state) throw noCheckpointError(dir);
  const recorded = state.settings as Partial<RecordedSettings> | undefined;
  if (!recorded) return run;
  const resumed = { ...run, workers: options.workers === undefined && typeof recorded.workers === 'number' ? recorded.workers : run.workers };
  const now = recordedSettings(options, resumed, architectureFor(options, resumed));
  const free = state.finished ? FREE_WHEN_FINISHED : [];
  const differing = (Object.keys(RECORDED) as Setting[]).filter((s) => !free.includes(s) && JSON.stringify(recorded[s]) !== JSON.stringify(now[s]));
  if (differing.length > 0) {
    const listed = differing.map((s) => difference(s, recorded[s], now[s])).join(', ');
    throw new Error(`checkpoint in ${dir} was made with other settings: ${listed}; resume it with its own settings, or remove it to start over`);
  }
  return resumed;
}
