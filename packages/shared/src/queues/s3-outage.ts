import { DelayedError, type Job } from 'bullmq';
import type { Logger } from '../logger.js';
import { isStoreUnavailable } from '../storage/store-unavailable.js';

/** How jobs wait out an S3 outage. */
export interface S3OutagePolicy {
  /**
   * How long a job may wait for S3 in all, from the first time it found S3 unreachable in the
   * current outage. Past it, an outage error spends the job's attempts like any other error, and the
   * job fails as it would without waiting.
   */
  budgetMs: number;
  /** Longest wait of a job between two tries while S3 stays unreachable. */
  maxDelayMs: number;
}

/** The default budget (an hour) and longest wait (30 s) of {@link S3OutagePolicy}. */
export const S3_OUTAGE_DEFAULTS: Readonly<S3OutagePolicy> = Object.freeze({ budgetMs: 3_600_000, maxDelayMs: 30_000 });

/**
 * What an {@link S3Outage} reports to: a gauge at 1 from the first deferral of an outage until S3
 * answers again (a job gets through, or the outage's probe does), and a count of deferrals.
 */
export interface S3OutageMetrics {
  readonly s3Unavailable: { set(value: number): void };
  readonly s3Deferrals: { inc(): void };
}

/** The first wait of a job, unless the cap is shorter. */
const FIRST_DELAY_MS = 1000;

/**
 * What a job waiting out an outage keeps in its progress, beside whatever else its progress holds:
 * the outage survives in Redis with the job, so that whichever worker runs it next counts the same
 * budget.
 */
export interface S3OutageProgress {
  /** When the job first found S3 unreachable in its current outage, in milliseconds since the epoch. */
  s3UnavailableSince: number;
  /** The step the job was in then, for a job that runs in steps (a training's phases) and says so. */
  s3UnavailableDuring?: string;
}

const progressFieldsOf = (job: Job): Record<string, unknown> =>
  typeof job.progress === 'object' && job.progress !== null ? (job.progress as Record<string, unknown>) : {};

/** The job's current outage, as its progress records it, if it is in one. */
export function outageOf(job: Job): S3OutageProgress | undefined {
  const { s3UnavailableSince: since, s3UnavailableDuring: step } = progressFieldsOf(job);
  if (typeof since !== 'number') return undefined;
  return typeof step === 'string' ? { s3UnavailableSince: since, s3UnavailableDuring: step } : { s3UnavailableSince: since };
}

/** When the job first found S3 unreachable in its current outage, if it is in one. */
export function outageStartOf(job: Job): number | undefined {
  return outageOf(job)?.s3UnavailableSince;
}

/** Whether a failure of the job's current try would fail it for good (BullMQ retries no more). */
function onLastAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/**
 * A worker's view of S3 while its jobs find it unreachable. An outage (connection refused or reset,
 * time-out, 5xx, throttling: see `isStoreUnavailable`) is nothing wrong with the job, so the job
 * goes back to the delayed set without spending an attempt and tries again later, waiting about as
 * long as the outage has lasted so far (from 1 s, doubling, up to the cap), until its budget is spent.
 *
 * A job's outage ends when it gets through to S3 ({@link reachable}), or when a try of it ends in
 * another error or fails it for good: a later outage, or a retry by hand, starts a whole budget.
 *
 * The worker's outage ends when a job gets through, or, given a `probe` (a light request such as
 * `ObjectStore.ping`), when the probe gets an answer: it runs every `maxDelayMs` while the outage
 * lasts, so that the gauge and the log see S3 back though no job comes (its deferred jobs taken by
 * another worker, removed, or past their budget). With a budget of 0 nothing waits, and an outage
 * error is a failure like any other.
 */
export class S3Outage {
  /** Since when this worker's jobs find S3 unreachable; undefined while it answers. */
  private since: number | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly policy: S3OutagePolicy,
    private readonly logger: Logger,
    private readonly metrics?: S3OutageMetrics,
    private readonly probe?: () => Promise<unknown>,
  ) {}

  /** The job's requests to S3 went through: S3 answers, and the job's outage, if it was in one, is over. */
  async reachable(job: Job): Promise<void> {
    this.answered();
    await this.forget(job);
  }

  /** Stops probing S3; safe to call twice. Call it before closing the store the probe uses. */
  close(): void {
    this.closed = true;
    clearTimeout(this.probeTimer);
  }

  /**
   * Defers the job when `error` says S3 is unreachable and the job's budget is not spent: records
   * when its outage began (and in which `step`, when given), keeping the rest of its progress,
   * moves it to the delayed set and throws `DelayedError`, which BullMQ takes for neither a success
   * nor a failure. Otherwise returns, and the error takes its usual course; a job whose try ends
   * so, in another error or for good, forgets its outage first.
   */
  async deferIfUnavailable(job: Job, token: string | undefined, error: unknown, log: Logger, step?: string): Promise<void> {
    // With no budget, nothing waits: the error is the job's failure, which its caller logs as such.
    if (!isStoreUnavailable(error) || this.policy.budgetMs <= 0) return this.forget(job);
    if (token === undefined) return;
    const now = Date.now();
    const recorded = outageStartOf(job);
    const since = recorded ?? now;
    const context = { err: error, s3UnavailableSince: new Date(since).toISOString(), budgetMs: this.policy.budgetMs };
    if (now - since >= this.policy.budgetMs) {
      log.error(context, 'S3 unreachable for longer than the outage budget; the job now spends its attempts');
      if (onLastAttempt(job)) await this.forget(job);
      return;
    }
    this.unreachable(now);
    if (recorded === undefined) {
      const outage: S3OutageProgress = step === undefined ? { s3UnavailableSince: since } : { s3UnavailableSince: since, s3UnavailableDuring: step };
      await job.updateProgress({ ...progressFieldsOf(job), ...outage });
    }
    const delayMs = this.delayFor(now, since);
    await job.moveToDelayed(now + delayMs, token);
    this.metrics?.s3Deferrals.inc();
    // Every deferral of a long outage would flood the log: the first one of a job is the one to see.
    log[recorded === undefined ? 'warn' : 'debug']({ ...context, delayMs }, 'S3 unreachable; job deferred without spending an attempt');
    throw new DelayedError();
  }

  /**
   * Ends the job's outage, if it was in one. Failing to (Redis away) leaves the job counting from
   * the outage's start, as it did before; it is no reason to fail the job.
   */
  private async forget(job: Job): Promise<void> {
    if (outageStartOf(job) === undefined) return;
    const { s3UnavailableSince: _ended, s3UnavailableDuring: _during, ...rest } = progressFieldsOf(job);
    try {
      await job.updateProgress(rest);
    } catch (error) {
      this.logger.warn({ err: error, jobId: job.id }, "could not clear the job's S3 outage; its next one counts from this one's start");
    }
  }

  private unreachable(now: number): void {
    if (this.since !== undefined) return;
    this.since = now;
    this.logger.error({ maxDelayMs: this.policy.maxDelayMs, budgetMs: this.policy.budgetMs }, 'S3 unreachable; jobs wait for it without spending attempts');
    this.metrics?.s3Unavailable.set(1);
    this.scheduleProbe();
  }

  /** S3 answered this worker: the outage, if there was one, is over. */
  private answered(): void {
    clearTimeout(this.probeTimer);
    if (this.since === undefined) return;
    this.logger.info({ unreachableForMs: Date.now() - this.since }, 'S3 reachable again; deferred jobs resume');
    this.since = undefined;
    this.metrics?.s3Unavailable.set(0);
  }

  /** Probes S3 once `maxDelayMs` from now, and again after each failure, until the outage ends. */
  private scheduleProbe(): void {
    const { probe } = this;
    if (!probe || this.closed) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      probe().then(
        () => {
          if (!this.closed) this.answered();
        },
        () => {
          if (this.since !== undefined) this.scheduleProbe();
        },
      );
    }, this.policy.maxDelayMs);
    // A worker that is otherwise done does not stay up for a probe.
    this.probeTimer.unref();
  }

  /**
   * As long as the outage has lasted, so each wait about doubles the last, within [1 s, cap]. The
   * outage is the older of the job's and this worker's, so that a job taken late in an outage does
   * not start again from 1 s. Jitter spreads the jobs deferred together over the second half.
   */
  private delayFor(now: number, jobSince: number): number {
    const lasted = now - Math.min(jobSince, this.since ?? jobSince);
    const delay = Math.min(this.policy.maxDelayMs, Math.max(FIRST_DELAY_MS, lasted));
    return Math.round(delay * (0.5 + Math.random() * 0.5));
  }
}
