import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from '@btd/shared';
import { ApiError } from '../errors/api-error.js';
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

/** A pending entry names its claimant, so that a request whose claim expired cannot free another's. */
type Entry = { state: 'pending'; fingerprint: string; claimant?: string } | { state: 'done'; fingerprint: string; response: StoredResponse };

/** Outcome of {@link IdempotencyStore.claim}: `entry` is what the claim wrote, which only its own release deletes. */
export type Claim = { kind: 'claimed'; entry: string } | { kind: 'replay'; response: StoredResponse };

/** Where the response of finished work could not be remembered. */
export interface IdempotencyLog {
  error(details: object, message: string): void;
}

/** The answer to a request whose Idempotency-Key was already used for a different request. */
export function idempotencyKeyReused(): ApiError {
  return new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used for a different request');
}

/** Pauses between attempts to remember a response: a blip of Redis should not lose it. */
const COMPLETE_RETRY_MS = [100, 400];

const POLL_MS = 50;
/** A claim whose request died (process killed) frees itself after this, instead of blocking retries for the full TTL. */
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
   * Claims the key for a request, or returns the response of the request that claimed it.
   * @throws ApiError 422 when the key was used for a different request, 409 when the first
   *   request is still running after the wait
   */
  async claim(clientId: string, idempotencyKey: string, fingerprint: string): Promise<Claim> {
    const key = this.keys.idempotency(clientId, idempotencyKey);
    const deadline = Date.now() + this.waitMs;
    const pending = JSON.stringify({ state: 'pending', fingerprint, claimant: randomUUID() } satisfies Entry);
    for (;;) {
      if ((await this.redis.set(key, pending, 'EX', PENDING_TTL_SECONDS, 'NX')) === 'OK') return { kind: 'claimed', entry: pending };
      const text = await this.redis.get(key);
      const entry = text ? (JSON.parse(text) as Entry) : undefined;
      if (entry && entry.fingerprint !== fingerprint) {
        throw idempotencyKeyReused();
      }
      if (entry?.state === 'done') return { kind: 'replay', response: entry.response };
      if (Date.now() > deadline) {
        throw new ApiError(409, 'idempotency_in_progress', 'a request with this Idempotency-Key is still being processed; retry later');
      }
      await sleep(POLL_MS);
    }
  }

  /** Stores the response of a claimed key for replays. */
  async complete(clientId: string, idempotencyKey: string, fingerprint: string, response: StoredResponse): Promise<void> {
    const entry: Entry = { state: 'done', fingerprint, response };
    await this.redis.set(this.keys.idempotency(clientId, idempotencyKey), JSON.stringify(entry), 'EX', this.ttlSeconds);
  }

  /**
   * Runs `work` once per key: the first call runs it and remembers its response, later calls
   * with the same key and fingerprint get that response back with `replayed` set. Without a
   * key, `work` simply runs.
   */
  async run(
    clientId: string,
    idempotencyKey: string | undefined,
    fingerprint: string,
    work: () => Promise<StoredResponse>,
    log?: IdempotencyLog,
  ): Promise<StoredResponse & { replayed: boolean }> {
    if (!idempotencyKey) return { replayed: false, ...(await work()) };
    const claim = await this.claim(clientId, idempotencyKey, fingerprint);
    if (claim.kind === 'replay') return { ...claim.response, replayed: true };
    let response: StoredResponse;
    try {
      response = await work();
    } catch (error) {
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

  /** Frees a key this request claimed (`entry`) after its work failed, so a retry can run it again. */
  async release(clientId: string, idempotencyKey: string, entry: string): Promise<void> {
    // Only while the key still holds this claim: a claim that lapsed and was taken over stays.
    await deleteIfHolds(this.redis, [this.keys.idempotency(clientId, idempotencyKey)], [entry]);
  }
}
