import { cancelledReason, type Logger, type TrainingCancellation } from '@btd/shared';
import { UnrecoverableError } from 'bullmq';

/** How often a running training looks for a cancellation (`DELETE /v1/trainings/:id`). */
export const CANCELLATION_POLL_MS = 1000;

/** A training stopped because it was cancelled: its job fails for good, with `cancelled by <client>`. */
export class TrainingCancelledError extends UnrecoverableError {
  constructor(readonly cancellation: TrainingCancellation) {
    super(cancelledReason(cancellation));
  }
}

/**
 * Watches a running training for a cancellation: reads it when the training starts (one cancelled
 * as a trainer took it never starts), then every {@link CANCELLATION_POLL_MS} until stopped. Its
 * signal is aborted once one is found; a failed read is logged and tried again at the next tick.
 */
export class CancellationWatch {
  private readonly controller = new AbortController();
  private cancellation: TrainingCancellation | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly read: () => Promise<TrainingCancellation | undefined>,
    private readonly log: Logger,
  ) {}

  /** Aborted once the training is cancelled. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async start(): Promise<void> {
    await this.poll();
    this.schedule();
  }

  /** Throws {@link TrainingCancelledError} once the training is cancelled. */
  check(): void {
    if (this.cancellation) throw new TrainingCancelledError(this.cancellation);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped || this.cancellation) return;
    this.timer = setTimeout(() => void this.poll().then(() => this.schedule()), CANCELLATION_POLL_MS);
  }

  private async poll(): Promise<void> {
    try {
      const found = await this.read();
      if (!found || this.cancellation || this.stopped) return;
      this.cancellation = found;
      this.log.info({ cancelledBy: found.by }, 'training cancelled; stopping it');
      this.controller.abort();
    } catch (error) {
      this.log.warn({ err: error }, 'could not read whether the training was cancelled');
    }
  }
}
