import { enqueueInferenceBulk, studyOriginalsPrefix, type Logger } from '@btd/shared';
import type { ApiContext } from '../context.js';
import { whileHolding } from '../store/redis-lock.js';
import { sweepLeftOriginals } from './left-originals.js';
import { startPeriodicSweep, type PeriodicSweep } from './periodic-sweep.js';
import { absentOriginals, imagesWithoutJobs, inferenceJobsOf, withSubmissionLock } from './resume-submission.js';
import { removeStudyRecords } from './undo-submission.js';

/**
 * How old a pending submission must be before the sweep settles it. A live submission gets from
 * its records to its jobs (or removes them) well within this: the study's createdAt is set before
 * the external id is claimed (a wait of at most 15 s), the originals' uploads run beside the
 * records and fail after S3_TIMEOUT_MS (30 s by default) of silence, with one retry by the S3
 * client, an upload that keeps moving takes seconds per file, and the enqueueing is one Redis
 * round trip that fails at once while Redis is away. Ten minutes is many times that, with room for
 * clocks of replicas that differ a little: an entry this old belongs to an API that was killed
 * (or whose own clean-up Redis refused), never to one still at work, which the sweep would race.
 */
export const PENDING_SUBMISSION_AGE_MS = 10 * 60_000;

/** How often each API process sweeps, and how long after its start it first does. */
export const PENDING_SWEEP_INTERVAL_MS = 60_000;
const FIRST_SWEEP_DELAY_MS = 10_000;

/** Most pending submissions settled by one sweep, oldest first; the next sweep takes the rest. */
const SWEEP_LIMIT = 100;

/**
 * Lease of the sweep lock, so that one replica sweeps at a time. Every step is idempotent anyway
 * (jobs by deterministic id, removal by script, a batch's completion delivered once), so a lease
 * that runs out during a slow sweep costs a second sweeper's work, never a wrong result.
 */
const SWEEP_LOCK_MS = 2 * 60_000;

/**
 * How a pending submission was settled: `gone` (no study any more), `submitted` (every image had
 * its job, or had finished), `enqueued` (the missing jobs were enqueued), `removed` (an original
 * was missing: the study, its originals and its external id's claim were removed), `busy` (a
 * retry was resuming it, or its request undoing it: left to them, and to the next sweep).
 */
export type PendingOutcome = 'gone' | 'submitted' | 'enqueued' | 'removed' | 'busy';

export interface SettledSubmission {
  readonly studyId: string;
  readonly outcome: PendingOutcome;
}

const LOG_MESSAGES: Readonly<Record<PendingOutcome, string>> = {
  gone: 'pending submission without a study: entry dropped',
  submitted: 'pending submission had its jobs: entry dropped',
  enqueued: 'pending submission had no jobs: enqueued them',
  removed: 'pending submission lacks an original: study removed and its externalId freed',
  busy: 'pending submission is being settled by another request: left to it',
};

/** Under the submission's lock (a retry may be resuming it): settles one pending submission. */
async function settleLocked(ctx: ApiContext, studyId: string): Promise<PendingOutcome> {
  const study = await ctx.studies.get(studyId);
  if (!study) {
    await ctx.studies.settlePending(studyId);
    return 'gone';
  }
  // Taken off the pending submissions meanwhile (a retry resumed it): nothing left to do.
  if (!(await ctx.studies.isPending(study.id))) return 'submitted';
  const missing = await imagesWithoutJobs(ctx, await ctx.studies.images(study));
  if (missing.length === 0) {
    await ctx.studies.settlePending(study.id);
    return 'submitted';
  }
  if ((await absentOriginals(ctx, missing)).length === 0) {
    await enqueueInferenceBulk(ctx.queues.inference, inferenceJobsOf(study, missing));
    await ctx.studies.settlePending(study.id);
    return 'enqueued';
  }
  // The records go last (their removal also drops the entry and frees the externalId): a sweep cut
  // short before leaves the entry, and the next one repeats the steps, each harmless the second time.
  await ctx.objectStore.deletePrefix(studyOriginalsPrefix(study.clientId, study.id));
  await removeStudyRecords(ctx, study);
  return 'removed';
}

async function settle(ctx: ApiContext, studyId: string): Promise<PendingOutcome> {
  const held = await withSubmissionLock(ctx, studyId, () => settleLocked(ctx, studyId));
  return held.acquired ? held.value : 'busy';
}

export interface SweepOptions {
  /** Settles only submissions at least this old (default {@link PENDING_SUBMISSION_AGE_MS}). */
  readonly olderThanMs?: number;
  /** Checked between submissions: the sweep stops early once it returns true (shutdown). */
  readonly stopped?: () => boolean;
}

/**
 * Settles the submissions whose records were written but whose jobs may never have been enqueued
 * (the API was killed in between): enqueues the missing jobs when the originals are stored,
 * removes the study and frees its externalId otherwise. Returns what it settled; nothing when
 * another replica is sweeping. A submission it could not settle (S3 or Redis failing) is logged
 * and left to the next sweep.
 */
export async function sweepPendingSubmissions(ctx: ApiContext, log: Logger, options: SweepOptions = {}): Promise<SettledSubmission[]> {
  const due = await ctx.studies.pendingSubmissions(Date.now() - (options.olderThanMs ?? PENDING_SUBMISSION_AGE_MS), SWEEP_LIMIT);
  if (due.length === 0) return [];
  const held = await whileHolding(ctx.redis, ctx.keys.pendingSweepLock, SWEEP_LOCK_MS, async () => {
    const settled: SettledSubmission[] = [];
    for (const studyId of due) {
      if (options.stopped?.()) break;
      try {
        const outcome = await settle(ctx, studyId);
        log.info({ studyId, outcome }, LOG_MESSAGES[outcome]);
        settled.push({ studyId, outcome });
      } catch (error) {
        log.error({ err: error, studyId }, 'could not settle a pending submission; the next sweep tries again');
      }
    }
    return settled;
  });
  return held.acquired ? held.value : [];
}

/** The periodic sweep of an API process. */
export type PendingSweeps = PeriodicSweep;

/**
 * Sweeps the pending submissions, then the originals failed submissions left behind, shortly after
 * start and then every {@link PENDING_SWEEP_INTERVAL_MS}, on a timer that keeps no process alive.
 */
export function startPendingSweeps(ctx: ApiContext, log: Logger): PendingSweeps {
  return startPeriodicSweep({
    firstDelayMs: FIRST_SWEEP_DELAY_MS,
    intervalMs: PENDING_SWEEP_INTERVAL_MS,
    sweep: async (stopped) => {
      await sweepPendingSubmissions(ctx, log, { stopped });
      await sweepLeftOriginals(ctx, log, { stopped });
    },
    failed: (error) => log.warn({ err: error }, 'could not sweep the pending submissions; trying again later'),
  });
}
