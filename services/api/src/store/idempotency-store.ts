import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from '@btd/shared';
import { ApiError } from '../errors/api-error.js';
import type { RecordKeys } from './record-keys.js';

/** A response remembered under an Idempotency-Key. */
export interface StoredResponse {
  readonly statusCode: number;
  /** Set when the work itself found an earlier submission (e.g. by external id). */
  readonly replayed?: boolean;
  readonly location?: string;
  readonly body: unknown;
}

type Entry = { state: 'pending'; fingerprint: string } | { state: 'done'; fingerprint: string; response: StoredResponse };

/** Outcome of {@link IdempotencyStore.claim}. */
export type Claim = { kind: 'claimed' } | { kind: 'replay'; response: StoredResponse };

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
    const pending = JSON.stringify({ state: 'pending', fingerprint } satisfies Entry);
    for (;;) {
      if ((await this.redis.set(key, pending, 'EX', PENDING_TTL_SECONDS, 'NX')) === 'OK') return { kind: 'claimed' };
      const text = await this.redis.get(key);
      const entry = text ? (JSON.parse(text) as Entry) : undefined;
      if (entry && entry.fingerprint !== fingerprint) {
        throw new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used for a different request');
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
  ): Promise<StoredResponse & { replayed: boolean }> {
    if (!idempotencyKey) return { replayed: false, ...(await work()) };
    const claim = await this.claim(clientId, idempotencyKey, fingerprint);
    if (claim.kind === 'replay') return { ...claim.response, replayed: true };
    let response: StoredResponse;
    try {
      response = await work();
    } catch (error) {
      await this.release(clientId, idempotencyKey).catch(() => undefined);
      throw error;
    }
    await this.complete(clientId, idempotencyKey, fingerprint, response);
    return { replayed: false, ...response };
  }

  /** Frees a claimed key after the request failed, so a retry can run it again. */
  async release(clientId: string, idempotencyKey: string): Promise<void> {
    await this.redis.del(this.keys.idempotency(clientId, idempotencyKey));
  }
}
