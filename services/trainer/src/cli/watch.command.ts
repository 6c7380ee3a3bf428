import type { Command } from 'commander';
import { addApiOptions, resolveConnection } from './api-options.js';
import { followTraining } from './follow-training.js';
import { TrainingApiClient, type ApiConnection, type TrainingView } from './training-api.client.js';
import { TrainingDisplay } from './training-display.js';
import { TrainingFailedError } from './training-failed.error.js';
import { wholeNumber } from './whole-number.option.js';

/** How long following rides out an unreachable API before it gives up. */
const OUTAGE_TOLERANCE_MS = 120_000;

/** The finished training as printed on stdout: the published version and the promotion decision. */
function outcomeOf(view: TrainingView) {
  const result = view.result;
  if (!result) throw new Error(`training ${view.id} completed without a result; see GET /v1/trainings/${view.id}`);
  const { task, version, contentHash, promoted, reasons, metrics, testSplitMetrics } = result;
  return { id: view.id, task, version, contentHash, promoted, reasons, metrics, testSplitMetrics: testSplitMetrics ?? null, finishedAt: view.finishedAt };
}

/**
 * Follows a training with a progress display until it ends: prints the outcome as JSON on stdout
 * when it completed, throws {@link TrainingFailedError} when it failed. Ctrl-C stops following
 * (the training goes on) with exit code 130.
 */
export async function watchTraining(connection: ApiConnection, id: string, intervalMs: number): Promise<void> {
  const client = new TrainingApiClient(connection);
  const display = new TrainingDisplay();
  const interrupted = new AbortController();
  const onInterrupt = (): void => interrupted.abort();
  process.once('SIGINT', onInterrupt);
  let view: TrainingView | undefined;
  try {
    view = await followTraining(client, id, {
      intervalMs,
      outageToleranceMs: OUTAGE_TOLERANCE_MS,
      signal: interrupted.signal,
      onUpdate: (update) => display.show(update),
      onRetry: (error) => display.note(`retrying: ${error.message}`),
    });
  } finally {
    display.stop();
    process.off('SIGINT', onInterrupt);
  }
  if (!view) {
    process.stderr.write(`stopped following; training ${id} goes on (btd-trainer watch ${id})\n`);
    process.exitCode = 130;
    return;
  }
  if (view.state === 'failed') throw new TrainingFailedError(view);
  if (view.state === 'cancelled') throw new Error(`training ${id} was cancelled by ${view.cancelledBy ?? 'an admin client'}; nothing was published`);
  process.stdout.write(`${JSON.stringify(outcomeOf(view), null, 2)}\n`);
}

/** Shared by `watch` and `start --watch`. */
export function addIntervalOption(command: Command): Command {
  return command.option('--interval <ms>', 'pause between two polls, in milliseconds', wholeNumber(100), 1000);
}

export function registerWatchCommand(program: Command): void {
  const command = program
    .command('watch')
    .description('follow a training with a progress bar; prints its published version and promotion decision as JSON')
    .argument('<id>', 'training id, e.g. training-3f2a...');
  addIntervalOption(addApiOptions(command)).action(async (id: string, options: { api?: string; key?: string; interval: number }) => {
    await watchTraining(resolveConnection(options), id, options.interval);
  });
}
