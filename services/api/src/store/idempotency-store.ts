import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from '@btd/shared';
import { ApiError } from '../errors/api-error.js';
import { IN_PROGRESS_RETRY_AFTER_SECONDS, RetryLaterError } from '../errors/retry-later.error.js';
import type { RecordKeys } from './record-keys.js';
import { deleteIfHolds } from './redis-script.js';
import { UNDO_PAUSES_MS, withPauses } from './with-pauses.js';

/** A response remembered under an Idempotency-Key. */
export interface StoredResponse {
  readonly statusCode: number;
  /** Set when the work itself found an earlier submission (e.g. by external id). */
  readonly replayed?: boolean;
  readonly location?: string;
  readonly body: unknown;
}

/**
 * A pending entry names its claimant, so that a request whose claim expired cannot free another's;
 * once the submission's records are written it also names its study (see {@link HeldClaim}).
 */
type Entry =
  | { state: 'pending'; fingerprint: string; claimant?: string; studyId?: string }
  | { state: 'done'; fingerprint: string; response: StoredResponse };

/**
 * The claim a request holds on its key. A study submission hands it to `StudyStore.create`, which
 * writes the records only while the key still holds `entry`, and in the same step replaces it by
 * `linkedEntry(studyId)`, kept for `ttlSeconds` like a response: from then on the key lasts as long
 * as the study's submission does, so a retry after the request died finds that study instead of
 * creating a second one.
 */
export interface HeldClaim {
  readonly key: string;
  /** The entry as claimed, which only this request's release deletes. */
  readonly entry: string;
  readonly ttlSeconds: number;
  linkedEntry(studyId: string): string;
  /**
   * The entry remembering `response`, for work whose whole response is known before its records
   * are written (a batch): the records' write replaces the claim by it in the same step, so a
   * retry after the request died replays that response instead of doing the work again.
   */
  doneEntry(response: StoredResponse): string;
}

/** Outcome of {@link IdempotencyStore.claim}. */
export type Claim = ({ kind: 'claimed' } & HeldClaim) | { kind: 'replay'; response: StoredResponse };

/** What became of the submission a linked entry names, as {@link RunOptions.resume} finds it. */
export type UnfinishedSubmission =
  /** Still in its own request's hands: wait for that request's response. */
  | { state: 'running' }
  /** Removed (its request undid it, or the sweep did): the key is free for a new submission. */
  | { state: 'gone' }
  /** Its jobs are enqueued (by its request, the sweep, or the resumption just now): answer with it. */
  | { state: 'finished'; response: StoredResponse };

/** How {@link IdempotencyStore.claim} treats an entry naming earlier work. */
export interface ClaimOptions {
  /** Looks at the submission a linked entry names and resumes it when its request died; without it, a retry waits for the response. */
  readonly resume?: (studyId: string) => Promise<UnfinishedSubmission>;
  /**
   * Whether what a remembered response names is still there. A key may have got back, as a replay,
   * a study that another request created, whose erasure knows only that request's key; a response
   * naming what is gone is forgotten and the key claimed afresh, so that it makes new work instead of
   * answering with what is gone. Without it every remembered response is replayed.
   */
  readonly stillThere?: (response: StoredResponse) => Promise<boolean>;
}

/** How {@link IdempotencyStore.run} reports, resumes and replays. */
export interface RunOptions extends ClaimOptions {
  readonly log?: IdempotencyLog;
}

/** Where the response of finished work could not be remembered. */
export interface IdempotencyLog {
  error(details: object, message: string): void;
}

/** The answer to a request whose Idempotency-Key was already used for a different request. */
export function idempotencyKeyReused(): ApiError {
  return new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used for a different request');
}

/** The answer to a request whose Idempotency-Key another request with the same key is still working on. */
export function idempotencyInProgress(): ApiError {
  const seconds = IN_PROGRESS_RETRY_AFTER_SECONDS;
  return new RetryLaterError(409, 'idempotency_in_progress', `a request with this Idempotency-Key is still being processed; retry after ${seconds} seconds`, seconds);
}

/** The entry that remembers a request's response for replays. */
function doneEntry(fingerprint: string, response: StoredResponse): string {
  return JSON.stringify({ state: 'done', fingerprint, response } satisfies Entry);
}

/** Pauses between attempts to remember a response: a blip of Redis should not lose it. */
const COMPLETE_RETRY_MS = [100, 400];

const POLL_MS = 50;
/**
 * A claim whose request died (process killed) before writing any record frees itself after this,
 * instead of blocking retries for the full TTL. Once the records are written, the claim follows
 * the study instead (see {@link HeldClaim}).
 */
const PENDING_TTL_SECONDS = 120;

/**
 * Remembers submissions by `Idempotency-Key`. The first request claims the key with SET NX;
 * a concurrent duplicate waits for the first to finish and then replays its response, so two
 * racing retries still create one study.
 */
export class IdempotencyStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RecordKeys,
    private readonly ttlSeconds: number,
    private readonly waitMs = 15_000,
  ) {}

  /**
   * Claims the key for a request, or returns the response of the request that claimed it; for a
   * key that names an unfinished submission, `resume` decides (see {@link ClaimOptions.resume}),
   * and a response naming what is gone is forgotten (see {@link ClaimOptions.stillThere}).
   * @throws ApiError 422 when the key was used for a different request, 409 when the first
   *   request is still running after the wait
   */
  async claim(clientId: string, idempotencyKey: string, fingerprint: string, options: ClaimOptions = {}): Promise<Claim> {
    const { resume, stillThere } = options;
    const key = this.keys.idempotency(clientId, idempotencyKey);
    const deadline = Date.now() + this.waitMs;
    const pending = { state: 'pending', fingerprint, claimant: randomUUID() } satisfies Entry;
    const entry = JSON.stringify(pending);
    const held: HeldClaim = {
      key,
      entry,
      ttlSeconds: this.ttlSeconds,
      linkedEntry: (studyId) => JSON.stringify({ ...pending, studyId } satisfies Entry),
      doneEntry: (response) => doneEntry(fingerprint, response),
    };
    for (;;) {
      if ((await this.redis.set(key, entry, 'EX', PENDING_TTL_SECONDS, 'NX')) === 'OK') return { kind: 'claimed', ...held };
      const text = await this.redis.get(key);
      const found = text ? (JSON.parse(text) as Entry) : undefined;
      if (found?.state === 'done' && stillThere && !(await stillThere(found.response))) {
        // What it answered with was erased since: free the key (unless it changed meanwhile) and claim it afresh.
        await deleteIfHolds(this.redis, [key], [text!]);
        continue;
      }
      if (found && found.fingerprint !== fingerprint) {
        throw idempotencyKeyReused();
      }
      if (found?.state === 'done') return { kind: 'replay', response: found.response };
      const unfinished = found?.studyId && resume ? await resume(found.studyId) : undefined;
      if (unfinished?.state === 'finished') {
        // Not remembering it loses nothing: the next retry finds the study finished again.
        await this.complete(clientId, idempotencyKey, fingerprint, unfinished.response).catch(() => undefined);
        return { kind: 'replay', response: unfinished.response };
      }
      // The study is gone: free the key (unless it changed meanwhile) and claim it afresh.
      if (unfinished?.state === 'gone') await deleteIfHolds(this.redis, [key], [text!]);
      else if (Date.now() > deadline) throw idempotencyInProgress();
      else await sleep(POLL_MS);
    }
  }

  /** Whether the key names a request of the client's, finished or still running. */
  async names(clientId: string, idempotencyKey: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.idempotency(clientId, idempotencyKey))) === 1;
  }

  /** Stores the response of a claimed key for replays. */
  async complete(clientId: string, idempotencyKey: string, fingerprint: string, response: StoredResponse): Promise<void> {
    await this.redis.set(this.keys.idempotency(clientId, idempotencyKey), doneEntry(fingerprint, response), 'EX', this.ttlSeconds);
  }

  /**
   * Runs `work` once per key: the first call runs it (with the claim) and remembers its response,
   * later calls with the same key and fingerprint get that response back with `replayed` set.
   * Without a key, `work` simply runs.
   */
  async run(
    clientId: string,
    idempotencyKey: string | undefined,
    fingerprint: string,
    work: (claim?: HeldClaim) => Promise<StoredResponse>,
    options: RunOptions = {},
  ): Promise<StoredResponse & { replayed: boolean }> {
    if (!idempotencyKey) return { replayed: false, ...(await work()) };
    const { log } = options;
    const claim = await this.claim(clientId, idempotencyKey, fingerprint, options);
    if (claim.kind === 'replay') return { ...claim.response, replayed: true };
    let response: StoredResponse;
    try {
      response = await work(claim);
    } catch (error) {
      // An entry the study's records took over stays: it follows the study, which the failed
      // request removed (a retry then finds it gone) or a retry resumed (and answers with it).
      await withPauses(() => this.release(clientId, idempotencyKey, claim.entry), UNDO_PAUSES_MS).catch((releaseError: unknown) => {
        log?.error({ err: releaseError }, 'could not free the Idempotency-Key of a failed request; it frees itself after its pending TTL');
      });
      throw error;
    }
    // The work is done (a study stored and queued): failing to remember its response must not
    // become an error that the client retries, which would do the work a second time.
    await withPauses(() => this.complete(clientId, idempotencyKey, fingerprint, response), COMPLETE_RETRY_MS).catch((error: unknown) => {
      log?.error({ err: error }, 'could not remember the response under its Idempotency-Key; answering it anyway');
    });
    return { replayed: false, ...response };
  }

  /** Frees a key whose entry names a study that its failed request removed, so a retry stores it afresh. */
  async unlink(claim: HeldClaim, studyId: string): Promise<void> {
    await deleteIfHolds(this.redis, [claim.key], [claim.linkedEntry(studyId)]);
  }

  /** Frees a key this request claimed (`entry`) after its work failed, so a retry can run it again. */
  async release(clientId: string, idempotencyKey: string, entry: string): Promise<void> {
    // Only while the key still holds this claim: a claim that lapsed and was taken over stays, and
    // so does one that a study's records took over.
    await deleteIfHolds(this.redis, [this.keys.idempotency(clientId, idempotencyKey)], [entry]);
  }
}
