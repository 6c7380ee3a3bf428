import type { Logger } from '@btd/shared';
import type { ApiContext } from '../context.js';
import { DependencyUnavailableError } from '../errors/dependency-unavailable.error.js';
import { whileHolding } from '../store/redis-lock.js';
import { batchDeliveryId } from '../webhooks/completion-events.js';
import { eraseStudy } from './erase-study.js';
import { startPeriodicSweep, type PeriodicSweep } from './periodic-sweep.js';

const DAY_MS = 24 * 3600_000;

/** Studies erased per step of a sweep: each step reads this many ids, erases them, then reads again. */
const SWEEP_BATCH = 20;
/** Most studies one sweep erases; the next sweep takes the rest. */
const SWEEP_LIMIT = 500;
/** How often each API process sweeps, and how long after its start it first does. */
export const RETENTION_SWEEP_INTERVAL_MS = 10 * 60_000;
const FIRST_SWEEP_DELAY_MS = 30_000;
/** Lease of the sweep lock (renewed while a sweep runs), so that one replica sweeps at a time. */
const SWEEP_LOCK_MS = 2 * 60_000;
/** Client indexes read per SCAN step, and ids per step of one index, while listing the studies finished before the index. */
const INDEX_STEP = 500;

/** What one sweep erased. */
export interface RetentionSweep {
  readonly studies: string[];
  readonly batches: string[];
}

export interface RetentionSweepOptions {
  /** The sweep's clock (default now). */
  readonly now?: number;
  /** Checked between studies: the sweep stops early once it returns true (shutdown). */
  readonly stopped?: () => boolean;
}

/**
 * Lists among the finished studies those that finished before that list existed (it is written as
 * studies finish), once per deployment: reads every client's index of studies and lists the done and
 * failed ones by their completedAt (their submission time, the index's score, for one without).
 */
async function indexEarlierStudies(ctx: ApiContext, log: Logger): Promise<void> {
  if (await ctx.redis.exists(ctx.keys.finishedStudiesIndexed)) return;
  let listed = 0;
  let cursor = '0';
  do {
    const [next, indexes] = await ctx.redis.scan(cursor, 'MATCH', ctx.keys.clientStudies('*'), 'COUNT', INDEX_STEP);
    cursor = next;
    for (const index of indexes) {
      for (let start = 0; ; start += INDEX_STEP) {
        const flat = await ctx.redis.zrange(index, String(start), String(start + INDEX_STEP - 1), 'WITHSCORES');
        if (flat.length === 0) break;
        const states = ctx.redis.pipeline();
        for (let i = 0; i < flat.length; i += 2) states.hmget(ctx.keys.study(flat[i]!), 'state', 'completedAt');
        const replies = (await states.exec()) ?? [];
        const adds = ctx.redis.pipeline();
        replies.forEach(([, fields], n) => {
          const [state, completedAt] = (fields ?? []) as (string | null)[];
          const finishedAt = Date.parse(completedAt ?? '');
          const score = Number.isFinite(finishedAt) ? finishedAt : flat[2 * n + 1]!;
          if (state === 'done' || state === 'failed') adds.zadd(ctx.keys.finishedStudies, score, flat[2 * n]!);
        });
        listed += adds.length;
        await adds.exec();
      }
    }
  } while (cursor !== '0');
  await ctx.redis.set(ctx.keys.finishedStudiesIndexed, new Date().toISOString());
  log.info({ listed }, 'listed the studies finished before retention was tracked');
}

/**
 * Erases the studies that finished more than `STUDY_RETENTION_DAYS` ago, first finished first, through
 * {@link eraseStudy} as `DELETE /v1/studies/:id` does, {@link SWEEP_BATCH} at a time and at most
 * {@link SWEEP_LIMIT} per sweep; a batch whose studies are thereby all erased goes too. One replica
 * sweeps at a time (a Redis lock); nothing when retention is off (0). S3 failing stops the sweep,
 * its study kept whole for the next one.
 */
export async function sweepRetention(ctx: ApiContext, log: Logger, options: RetentionSweepOptions = {}): Promise<RetentionSweep> {
  const swept: RetentionSweep = { studies: [], batches: [] };
  const days = ctx.config.studyRetentionDays;
  if (days <= 0) return swept;
  const cutoff = (options.now ?? Date.now()) - days * DAY_MS;
  const held = await whileHolding(ctx.redis, ctx.keys.retentionSweepLock, SWEEP_LOCK_MS, async () => {
    await indexEarlierStudies(ctx, log);
    const skipped = new Set<string>();
    while (swept.studies.length + skipped.size < SWEEP_LIMIT) {
      const due = (await ctx.studies.finishedBefore(cutoff, SWEEP_BATCH + skipped.size)).filter((id) => !skipped.has(id));
      if (due.length === 0) return;
      for (const studyId of due) {
        if (options.stopped?.()) return;
        const study = await ctx.studies.get(studyId);
        if (!study) {
          await ctx.studies.unlistFinished(studyId);
          continue;
        }
        try {
          if (await eraseStudy(ctx, study, 'retention', log)) swept.studies.push(study.id);
        } catch (error) {
          // S3 away: the others would fail alike; the next sweep tries again.
          if (error instanceof DependencyUnavailableError) return;
          skipped.add(study.id);
          log.error({ err: error, studyId }, 'could not erase a study past its retention; the next sweep tries again');
          continue;
        }
        if (study.batchId && (await ctx.batches.eraseIfEmpty({ id: study.batchId, clientId: study.clientId }, batchDeliveryId(study.batchId)))) {
          swept.batches.push(study.batchId);
          log.info({ batchId: study.batchId }, 'batch erased: its studies were all erased');
        }
      }
    }
  });
  if (held.acquired && swept.studies.length > 0) log.info({ studies: swept.studies.length, batches: swept.batches.length, retentionDays: days }, 'retention sweep erased studies');
  return swept;
}

/**
 * Sweeps every {@link RETENTION_SWEEP_INTERVAL_MS} when `STUDY_RETENTION_DAYS` is set (the first
 * sweep shortly after start), on a timer that keeps no process alive; undefined when it is not.
 */
export function startRetentionSweeps(ctx: ApiContext, log: Logger): PeriodicSweep | undefined {
  if (ctx.config.studyRetentionDays <= 0) return undefined;
  return startPeriodicSweep({
    firstDelayMs: FIRST_SWEEP_DELAY_MS,
    intervalMs: RETENTION_SWEEP_INTERVAL_MS,
    sweep: (stopped) => sweepRetention(ctx, log, { stopped }),
    failed: (error) => log.warn({ err: error }, 'could not sweep the studies past their retention; trying again later'),
  });
}
