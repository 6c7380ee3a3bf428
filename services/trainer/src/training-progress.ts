import { outageOf, type Logger, type TrainingJobHandle, type TrainingPhase, type TrainingProgress } from '@btd/shared';

/** Reports progress to the job; each update keeps the fields earlier ones set (last epoch metrics). */
export interface ProgressReporter {
  (update: Partial<TrainingProgress>): void;
  /** Resolves once every update so far has reached Redis (or failed to). */
  flush(): Promise<void>;
  /** The phase reported last (`preparing` until the first report). */
  phase(): TrainingPhase;
}

/** The job's S3 outage as its progress holds it: `S3Outage` writes it, every report keeps it. */
function outageFields(job: TrainingJobHandle): Pick<TrainingProgress, 's3UnavailableSince' | 's3UnavailableDuring'> {
  return (outageOf(job) ?? {}) as Pick<TrainingProgress, 's3UnavailableSince' | 's3UnavailableDuring'>;
}

/**
 * Progress updates are fire-and-forget from the training loop's point of view, but are chained so
 * they reach Redis in order; a failed update is logged, never fatal to the training. Each carries
 * the S3 outage the job is waiting out, if any, so that its budget counts on across tries, and the
 * fields of `carried` until an update replaces them.
 */
export function createProgressReporter(job: TrainingJobHandle, logger: Logger, carried: Partial<TrainingProgress> = {}): ProgressReporter {
  let state: TrainingProgress = { phase: 'preparing', ...carried };
  let chain: Promise<void> = Promise.resolve();
  const report = (update: Partial<TrainingProgress>): void => {
    state = { ...state, ...update };
    const snapshot = { ...state, ...outageFields(job) };
    if (update.epoch !== undefined) logger.info({ progress: snapshot }, 'epoch finished');
    chain = chain.then(
      () => job.updateProgress(snapshot),
      () => undefined,
    ).catch((error: unknown) => logger.warn({ err: error }, 'could not update training progress'));
  };
  return Object.assign(report, { flush: () => chain, phase: () => state.phase });
}
