import { datasetFolderAccess, type DatasetWait, type Logger, type TrainerDatasets, type TrainingJobHandle } from '@btd/shared';
import { DelayedError, UnrecoverableError } from 'bullmq';
import type { DatasetFolderUnreadableError } from './dataset-source.js';
import type { ProgressReporter } from './training-progress.js';

/** What a trainer knows of the other trainers, to tell whether one of them could read a folder it cannot. */
export interface DatasetReaders {
  /** This trainer's name, as it publishes itself. */
  readonly trainer: string;
  /** What the running trainers publish (this one included). */
  live(): Promise<TrainerDatasets[]>;
  /** How long a training waits while no running trainer could read its folder (`TRAINER_DATASET_WAIT_MS`). */
  readonly waitMs: number;
}

/** The training handed back, and what it was refused for. */
export interface UnreadableTraining {
  job: TrainingJobHandle;
  token: string | undefined;
  folder: string;
  error: DatasetFolderUnreadableError;
  /** The wait its progress held when this trainer took it (the progress is rewritten since). */
  earlier: DatasetWait | undefined;
  progress: ProgressReporter;
  log: Logger;
}

/** A trainer that could not read the folder, and why. */
type DatasetRefusal = DatasetWait['refusedBy'][number];

/** Refusals a wait keeps by trainers no longer running, the latest: each restart of a trainer names a new one. */
const REFUSALS_KEPT = 20;
/** The first wait between two hand-backs, and the longest: a trainer that frees up takes the training within it. */
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 10_000;

/** The wait a training's progress holds, if it waits for a trainer that can read its folder. */
export function datasetWaitOf(job: TrainingJobHandle): DatasetWait | undefined {
  const progress = job.progress;
  if (typeof progress !== 'object' || progress === null || !('datasetWait' in progress)) return undefined;
  return progress.datasetWait as DatasetWait;
}

function unreadableAnywhere(folder: string, wait: Pick<DatasetWait, 'refusedBy'>, waitMs: number): string {
  const refusals = wait.refusedBy.map((refusal) => `trainer ${refusal.trainer}: ${refusal.reason}`).join('; ');
  return `dataset folder ${folder} could not be read by any trainer (${refusals}), and no running trainer whose roots may hold it came within TRAINER_DATASET_WAIT_MS (${waitMs} ms)`;
}

/**
 * The refusals a wait keeps, in order: every one by a running trainer, which, dropped, would be
 * waited for again (among more than {@link REFUSALS_KEPT} trainers, a training refused by each
 * would be handed back for good), and the latest {@link REFUSALS_KEPT} by trainers gone since.
 */
function keptRefusals(refusals: readonly DatasetRefusal[], running: ReadonlySet<string>): DatasetRefusal[] {
  let gone = 0;
  return refusals
    .toReversed()
    .filter((refusal) => running.has(refusal.trainer) || ++gone <= REFUSALS_KEPT)
    .toReversed();
}

/**
 * Decides the fate of a training whose local dataset folder this trainer cannot read. While another
 * running trainer that has not refused it publishes roots that may hold the folder, or, while none
 * does, for up to `waitMs`, the training goes back to the delayed set without spending an attempt
 * (BullMQ's `moveToDelayed` and `DelayedError`), its progress saying which trainers could not read
 * it and which it waits for; otherwise it fails for good, naming each trainer that could not and why.
 */
export async function handBackUnreadable(readers: DatasetReaders, training: UnreadableTraining): Promise<never> {
  const { job, token, folder, earlier, log } = training;
  const now = Date.now();
  const others = (earlier?.refusedBy ?? []).filter((refusal) => refusal.trainer !== readers.trainer);
  const live = await readers.live();
  const refusedBy = keptRefusals([...others, { trainer: readers.trainer, reason: training.error.message }], new Set(live.map((trainer) => trainer.trainer)));
  const refused = new Set(refusedBy.map((refusal) => refusal.trainer));
  const waitingFor = live
    .filter((trainer) => !refused.has(trainer.trainer) && datasetFolderAccess(trainer, folder).access !== 'unreadable')
    .map((trainer) => trainer.trainer)
    .sort();
  const unreadableSince = waitingFor.length > 0 ? undefined : (earlier?.unreadableSince ?? now);
  const waitLeft = unreadableSince === undefined ? Number.POSITIVE_INFINITY : readers.waitMs - (now - unreadableSince);
  if (token === undefined || waitLeft <= 0) throw new UnrecoverableError(unreadableAnywhere(folder, { refusedBy }, readers.waitMs));

  const since = earlier?.since ?? now;
  const wait: DatasetWait = { since, refusedBy, waitingFor, ...(unreadableSince === undefined ? {} : { unreadableSince }) };
  training.progress({ phase: 'preparing', datasetWait: wait });
  await training.progress.flush();
  // As long as it has waited so far, within [1 s, 10 s], jitter spreading the trainings handed back together; never past the end of the wait.
  const delayMs = Math.min(waitLeft, Math.round(Math.min(MAX_DELAY_MS, Math.max(FIRST_DELAY_MS, now - since)) * (0.5 + Math.random() * 0.5)));
  await job.moveToDelayed(now + delayMs, token);
  // The first refusal by this trainer is the one to see; its later takes of the same training would flood the log.
  log[others.length === (earlier?.refusedBy.length ?? 0) ? 'warn' : 'debug'](
    { reason: training.error.message, waitingFor, unreadableSince, delayMs },
    'dataset folder not readable here; training handed back for a trainer that can read it',
  );
  throw new DelayedError();
}
