import type { FastifyBaseLogger } from 'fastify';
import { isStoreUnavailable, resultsPrefix, studyOriginalsPrefix, type Logger } from '@btd/shared';
import type { ApiContext } from '../context.js';
import type { StudyRecord } from '../store/records.js';
import { UNDO_PAUSES_MS, withPauses } from '../store/with-pauses.js';

/** Most left-behind originals one sweep removes, oldest first; the next sweep takes the rest. */
const SWEEP_LIMIT = 100;

/**
 * Objects left behind, as their entry among the left originals names them: a failed submission's
 * originals, or, with `imageId`, the results of one image of a study erased while analysed.
 */
interface LeftOriginals {
  readonly clientId: string;
  readonly studyId: string;
  readonly imageId?: string | undefined;
}

/** An entry as stored: what it names, and how often S3 refused it so far, once it did (JSON leaves out what is undefined). */
const entryText = ({ clientId, studyId, imageId }: LeftOriginals, tries?: number): string => JSON.stringify({ clientId, studyId, imageId, tries });

const entryOf = (study: Pick<StudyRecord, 'clientId' | 'id'>, imageId?: string): string => entryText({ clientId: study.clientId, studyId: study.id, imageId });

/** What an entry's objects are, as the sweep's log lines name them. */
const whatIsLeft = (entry: Pick<LeftOriginals, 'imageId'>): string => (entry.imageId === undefined ? 'the originals a failed submission left' : "an erased study's results");

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

/**
 * Records for the sweep the results of images of an erased study that S3 would not delete (see
 * `eraseStudy`): the sweep deletes them once S3 answers, the study's records being gone. Returns
 * false when Redis refuses too.
 */
export async function recordLeftResults(ctx: ApiContext, study: Pick<StudyRecord, 'clientId' | 'id'>, imageIds: readonly string[]): Promise<boolean> {
  if (imageIds.length === 0) return true;
  const now = Date.now();
  try {
    await withPauses(() => ctx.redis.zadd(ctx.keys.leftOriginals, ...imageIds.flatMap((imageId) => [now, entryOf(study, imageId)])), UNDO_PAUSES_MS);
    return true;
  } catch {
    return false;
  }
}

/**
 * Most times the sweep tries to remove one failed submission's originals that S3 refuses for a
 * reason other than an outage (access denied, a bad request): it then drops the entry, at `error`.
 */
export const LEFT_ORIGINALS_MAX_TRIES = 6;

/** Wait before the sweep tries again originals that S3 refused `tries` times: a minute, doubling (16 minutes before the last try). */
const retryDelayMs = (tries: number): number => 60_000 * 2 ** (tries - 1);

/** An entry among the left originals, as the sweep reads it: how often S3 refused it so far, and its prefix. */
interface SweepEntry extends LeftOriginals {
  readonly tries: number;
  readonly prefix: string;
}

/** Reads an entry; throws when it names no originals (not JSON, or ids that are no key segment). */
function readEntry(entry: string): SweepEntry {
  const { clientId, studyId, imageId, tries } = JSON.parse(entry) as Partial<SweepEntry>;
  if (typeof clientId !== 'string' || typeof studyId !== 'string') throw new TypeError('the entry names no clientId and studyId');
  if (imageId !== undefined && typeof imageId !== 'string') throw new TypeError('the entry names an imageId that is not a string');
  const prefix = imageId === undefined ? studyOriginalsPrefix(clientId, studyId) : resultsPrefix(imageId);
  return { clientId, studyId, imageId, tries: typeof tries === 'number' ? tries : 0, prefix };
}

/** Strikes off an entry the sweep gives up on, counting it in `btd_left_originals_dropped_total`. */
async function dropEntry(ctx: ApiContext, entry: string, reason: 'malformed' | 'refused'): Promise<void> {
  await ctx.redis.zrem(ctx.keys.leftOriginals, entry);
  ctx.metrics.leftOriginalsDropped.inc({ reason });
}

/**
 * Originals S3 refused to remove for a reason other than an outage: moved behind the others, to be
 * tried again after {@link retryDelayMs}, or, on the {@link LEFT_ORIGINALS_MAX_TRIES}th refusal, dropped.
 */
async function putAside(ctx: ApiContext, log: Logger, entry: string, read: SweepEntry, error: unknown, now: number): Promise<void> {
  const tries = read.tries + 1;
  const where = { err: error, studyId: read.studyId, bucket: ctx.objectStore.bucket, prefix: read.prefix, tries };
  if (tries >= LEFT_ORIGINALS_MAX_TRIES) {
    await dropEntry(ctx, entry, 'refused');
    log.error(where, `gave up removing ${whatIsLeft(read)}: S3 refused ${tries} times, not for an outage; they stay in the bucket under the prefix until removed by hand`);
    return;
  }
  const delayMs = retryDelayMs(tries);
  const next = entryText(read, tries);
  await ctx.redis.multi().zrem(ctx.keys.leftOriginals, entry).zadd(ctx.keys.leftOriginals, now + delayMs, next).exec();
  log.warn({ ...where, retryInMs: delayMs }, `S3 refused to remove ${whatIsLeft(read)}, not for an outage; the sweep tries again later and removes the others meanwhile`);
}

/** What the sweep did with the originals a failed submission left: `removed`, or `kept` for a study that exists again. */
export interface SweptOriginals {
  readonly studyId: string;
  readonly prefix: string;
  readonly outcome: 'removed' | 'kept';
}

export interface LeftOriginalsSweepOptions {
  /** Checked between entries: the sweep stops early once it returns true (shutdown). */
  readonly stopped?: () => boolean;
  /** The sweep's clock (default now): entries put aside until later are left until then. */
  readonly now?: number;
}

/**
 * Removes the originals that failed submissions left behind during an S3 outage (see
 * {@link removeOriginals}), the oldest {@link SWEEP_LIMIT} that are due. Those of a study whose
 * records are still there are its own (the sweep of pending submissions settles it, keeping or
 * removing them), so they are only struck off. While S3 is unreachable, the sweep stops at the
 * first, leaving all to the next sweep. Originals S3 refuses for another reason are put aside and
 * tried again later (see {@link putAside}), so that they hold up none of the others; an entry that
 * names no originals is dropped at once. Removing twice is harmless, so replicas need no lock.
 */
export async function sweepLeftOriginals(ctx: ApiContext, log: Logger, options: LeftOriginalsSweepOptions = {}): Promise<SweptOriginals[]> {
  const now = options.now ?? Date.now();
  const swept: SweptOriginals[] = [];
  for (const entry of await ctx.redis.zrangebyscore(ctx.keys.leftOriginals, '-inf', now, 'LIMIT', 0, SWEEP_LIMIT)) {
    if (options.stopped?.()) break;
    let read: SweepEntry;
    try {
      read = readEntry(entry);
    } catch (error) {
      await dropEntry(ctx, entry, 'malformed');
      log.error({ err: error, entry }, 'dropped an entry among the originals failed submissions left: it names no originals to remove');
      continue;
    }
    const { studyId, prefix } = read;
    const where = { studyId, bucket: ctx.objectStore.bucket, prefix };
    try {
      const outcome = (await ctx.studies.get(studyId)) ? 'kept' : 'removed';
      if (outcome === 'removed') await ctx.objectStore.deletePrefix(prefix);
      await ctx.redis.zrem(ctx.keys.leftOriginals, entry);
      log.info({ ...where, outcome }, outcome === 'removed' ? `removed ${whatIsLeft(read)}` : `${whatIsLeft(read)} belong to its study, whose records are there: kept`);
      swept.push({ studyId, prefix, outcome });
    } catch (error) {
      if (!isStoreUnavailable(error)) {
        await putAside(ctx, log, entry, read, error, now);
        continue;
      }
      // S3 still unreachable: the others would each wait out the SDK's retries to fail alike.
      log.warn({ err: error, ...where }, `could not remove ${whatIsLeft(read)}; the next sweep tries again`);
      break;
    }
  }
  return swept;
}
