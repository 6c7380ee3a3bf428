import type { Logger, TrainingJobHandle, TrainingProgress } from '@btd/shared';

/** Reports progress to the job; each update keeps the fields earlier ones set (last epoch metrics). */
export type ProgressReporter = (update: Partial<TrainingProgress>) => void;

/**
 * Progress updates are fire-and-forget from the training loop's point of view, but are chained so
 * they reach Redis in order; a failed update is logged, never fatal to the training.
 */
export function createProgressReporter(job: TrainingJobHandle, logger: Logger): ProgressReporter & { flush(): Promise<void> } {
  let state: TrainingProgress = { phase: 'preparing' };
  let chain: Promise<void> = Promise.resolve();
  const report = (update: Partial<TrainingProgress>): void => {
    state = { ...state, ...update };
    const snapshot = state;
    if (update.epoch !== undefined) logger.info({ progress: snapshot }, 'epoch finished');
    chain = chain.then(
      () => job.updateProgress(snapshot),
      () => undefined,
    ).catch((error: unknown) => logger.warn({ err: error }, 'could not update training progress'));
  };
  return Object.assign(report, { flush: () => chain });
}
