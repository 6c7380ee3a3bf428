import type { Redis } from '@btd/shared';
import type { HeldClaim, StoredResponse } from './idempotency-store.js';
import type { RecordKeys } from './record-keys.js';
import { JSON_FIELDS, fromHash, toHash, type BatchRecord, type BatchState } from './records.js';
import { LUA_HSET_JSON, redisScript } from './redis-script.js';
import { ClaimLostError } from './study-store.js';
import { closeBatchScript, eraseEmptyBatchScript } from './study-scripts.js';

/**
 * Creates a batch and lists it for its client; under an Idempotency-Key, only while the key still
 * holds the request's claim, which the entry remembering the response replaces in the same step.
 *
 * KEYS: batch, client's batches, the Idempotency-Key (the batch's own key without one).
 * ARGV: batch fields (JSON), createdAt (ms), batchId, the claim or '', the response entry, its TTL (s).
 * Returns 'ok' or 'claim_lost'.
 */
const createBatchScript = redisScript(`${LUA_HSET_JSON}
if ARGV[4] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[4] then return 'claim_lost' end
hsetJson(KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6]) end
return 'ok'
`);

/** A batch's response remembered under the Idempotency-Key its request claimed. */
export interface RememberedResponse {
  readonly claim: HeldClaim;
  readonly response: StoredResponse;
}

/** Batches: a hash each, plus a sorted set of their studies in submission order. */
export class BatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RecordKeys,
  ) {}

  /**
   * Creates a batch; with `remembered`, its response is remembered under the request's
   * Idempotency-Key in the same step, so a request that dies right after cannot leave a second
   * batch to its retry.
   * @throws ClaimLostError when the claim lapsed and another request took the key
   */
  async create(batch: BatchRecord, remembered?: RememberedResponse): Promise<void> {
    const keys = [this.keys.batch(batch.id), this.keys.clientBatches(batch.clientId), remembered?.claim.key ?? this.keys.batch(batch.id)];
    const { claim, response } = remembered ?? {};
    const idempotency = claim && response ? [claim.entry, claim.doneEntry(response), claim.ttlSeconds] : ['', '', 0];
    const outcome = await createBatchScript(this.redis, keys, [JSON.stringify(toHash(batch)), Date.parse(batch.createdAt), batch.id, ...idempotency]);
    if (outcome === 'claim_lost') throw new ClaimLostError();
  }

  /** The batch, or undefined. Callers check `clientId` themselves. */
  async get(batchId: string): Promise<BatchRecord | undefined> {
    return fromHash<BatchRecord>(await this.redis.hgetall(this.keys.batch(batchId)), JSON_FIELDS.batch);
  }

  /** Closes the batch to new studies; returns its state afterwards (`done` if nothing is pending). */
  async close(batchId: string): Promise<BatchState> {
    return (await closeBatchScript(this.redis, [this.keys.batch(batchId)], [new Date().toISOString()])) as BatchState;
  }

  /**
   * Erases the batch if it is done and its studies were all erased (see `eraseEmptyBatchScript`),
   * with the delivery named by `deliveryId`; returns whether it did.
   */
  async eraseIfEmpty(batch: Pick<BatchRecord, 'id' | 'clientId'>, deliveryId: string): Promise<boolean> {
    const keys = [this.keys.batch(batch.id), this.keys.batchStudies(batch.id), this.keys.batchFinished(batch.id), this.keys.clientBatches(batch.clientId), this.keys.delivery(deliveryId)];
    return (await eraseEmptyBatchScript(this.redis, keys, [batch.id])) === 'erased';
  }

  /**
   * One page of the batch's study ids in submission order. `after` is the position of the last
   * study already seen (0 for the first page), so pages stay stable while studies are added.
   */
  async studyPage(batchId: string, after: number, limit: number): Promise<{ ids: string[]; last: number | undefined }> {
    const flat = await this.redis.zrangebyscore(this.keys.batchStudies(batchId), `(${after}`, '+inf', 'WITHSCORES', 'LIMIT', 0, limit);
    const ids: string[] = [];
    let last: number | undefined;
    for (let i = 0; i < flat.length; i += 2) {
      ids.push(flat[i]!);
      last = Number(flat[i + 1]);
    }
    return { ids, last };
  }
}
