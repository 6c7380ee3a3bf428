import type { FastifyBaseLogger } from 'fastify';
import { isStoreUnavailable, studyOriginalsPrefix, type Logger } from '@btd/shared';
import type { ApiContext } from '../context.js';
import type { StudyRecord } from '../store/records.js';
import { UNDO_PAUSES_MS, withPauses } from '../store/with-pauses.js';

/** Most left-behind originals one sweep removes, oldest first; the next sweep takes the rest. */
const SWEEP_LIMIT = 100;

/** A failed submission's originals, as its entry among the left originals names them. */
interface LeftOriginals {
  readonly clientId: string;
  readonly studyId: string;
}

const entryOf = (study: Pick<StudyRecord, 'clientId' | 'id'>): string => JSON.stringify({ clientId: study.clientId, studyId: study.id } satisfies LeftOriginals);

/**
 * Removes the originals of a failed submission. When S3 refuses (an outage), they are recorded in
 * Redis for the sweep, which removes them once S3 answers again; should Redis refuse that too,
 * they stay, and the error names the bucket and the prefix to remove by hand.
 */
export async function removeOriginals(ctx: ApiContext, study: StudyRecord, log: FastifyBaseLogger): Promise<void> {
  const prefix = studyOriginalsPrefix(study.clientId, study.id);
  try {
    await ctx.objectStore.deletePrefix(prefix);
    return;
  } catch (error) {
    const where = { err: error, studyId: study.id, bucket: ctx.objectStore.bucket, prefix };
    try {
      await withPauses(() => ctx.redis.zadd(ctx.keys.leftOriginals, Date.now(), entryOf(study)), UNDO_PAUSES_MS);
      log.warn(where, 'could not remove the originals of a failed submission; the sweep removes them once S3 answers');
    } catch {
      log.error(where, 'could not remove the originals of a failed submission, nor record them for the sweep; they stay in the bucket under the prefix until removed by hand');
    }
  }
}

/** What the sweep did with the originals a failed submission left: `removed`, or `kept` for a study that exists again. */
export interface SweptOriginals {
  readonly studyId: string;
  readonly prefix: string;
  readonly outcome: 'removed' | 'kept';
}

/**
 * Removes the originals that failed submissions left behind during an S3 outage (see
 * {@link removeOriginals}). Those of a study whose records are still there are its own (the sweep
 * of pending submissions settles it, keeping or removing them), so they are only struck off. What
 * S3 still refuses is logged and left to the next sweep, which, while S3 stays unreachable, stops
 * at the first. Removing twice is harmless, so replicas need no lock.
 */
export async function sweepLeftOriginals(ctx: ApiContext, log: Logger, stopped: () => boolean = () => false): Promise<SweptOriginals[]> {
  const swept: SweptOriginals[] = [];
  for (const entry of await ctx.redis.zrange(ctx.keys.leftOriginals, 0, String(SWEEP_LIMIT - 1))) {
    if (stopped()) break;
    const { clientId, studyId } = JSON.parse(entry) as LeftOriginals;
    const prefix = studyOriginalsPrefix(clientId, studyId);
    const where = { studyId, bucket: ctx.objectStore.bucket, prefix };
    try {
      const outcome = (await ctx.studies.get(studyId)) ? 'kept' : 'removed';
      if (outcome === 'removed') await ctx.objectStore.deletePrefix(prefix);
      await ctx.redis.zrem(ctx.keys.leftOriginals, entry);
      log.info({ ...where, outcome }, outcome === 'removed' ? 'removed the originals a failed submission left' : 'originals a failed submission left belong to its study, whose records are there: kept');
      swept.push({ studyId, prefix, outcome });
    } catch (error) {
      log.warn({ err: error, ...where }, 'could not remove the originals a failed submission left; the next sweep tries again');
      // S3 still unreachable: the others would each wait out the SDK's retries to fail alike.
      if (isStoreUnavailable(error)) break;
    }
  }
  return swept;
}
