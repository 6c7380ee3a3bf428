import type { Redis } from '@btd/shared';
import type { RecordKeys } from './record-keys.js';
import { JSON_FIELDS, fromHash, toHash, type DeliveryRecord } from './records.js';
import { LUA_HSET_JSON, redisScript } from './redis-script.js';

/**
 * Creates the delivery KEYS[1] (fields ARGV[1], JSON) unless it exists, and only while its subject
 * KEYS[2] (the study or batch it announces) still exists. Returns 1 when the delivery exists now
 * (created or found), 0 when its subject is gone.
 */
const createIfMissing = redisScript(`${LUA_HSET_JSON}
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
hsetJson(KEYS[1], ARGV[1])
return 1
`);

const markFailedUnlessDelivered = redisScript(`
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'deliveredAt') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'failedAt', ARGV[1], 'failedReason', ARGV[2])
return 1
`);

/**
 * Records one attempt on a delivery that still exists: one erased with its study while being sent
 * is not brought back as a record of that attempt alone. KEYS: delivery. ARGV: status, error or '',
 * now (ISO).
 */
const recordAttemptIfExists = redisScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'lastStatus', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'lastError', ARGV[2]) else redis.call('HDEL', KEYS[1], 'lastError') end
local status = tonumber(ARGV[1])
if status >= 200 and status < 300 then redis.call('HSET', KEYS[1], 'deliveredAt', ARGV[3]) end
return 1
`);

/** What a delivery announces: a study, or a batch. */
export type DeliverySubject = { readonly studyId: string } | { readonly batchId: string };

/** Webhook deliveries: URL, body and attempt history, kept out of the queue's job data. */
export class DeliveryStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RecordKeys,
  ) {}

  /**
   * Creates the delivery unless it exists; the first body written wins, so retries resend the same bytes.
   * Not once its subject is gone: a study (or batch) erased after it finished, before it was announced,
   * is not announced. Returns whether the delivery exists, to be sent.
   */
  async createOnce(delivery: Omit<DeliveryRecord, 'attempts'>, subject: DeliverySubject): Promise<boolean> {
    const fields = JSON.stringify(toHash({ ...delivery, attempts: 0 }));
    const subjectKey = 'studyId' in subject ? this.keys.study(subject.studyId) : this.keys.batch(subject.batchId);
    return (await createIfMissing(this.redis, [this.keys.delivery(delivery.id), subjectKey], [fields])) === 1;
  }

  async get(deliveryId: string): Promise<DeliveryRecord | undefined> {
    return fromHash<DeliveryRecord>(await this.redis.hgetall(this.keys.delivery(deliveryId)), JSON_FIELDS.delivery);
  }

  /** Records one attempt and its HTTP status (0 when no response came back), unless the delivery is gone (its study erased meanwhile). */
  async recordAttempt(deliveryId: string, status: number, error: string | undefined): Promise<void> {
    await recordAttemptIfExists(this.redis, [this.keys.delivery(deliveryId)], [status, error ? error.slice(0, 300) : '', new Date().toISOString()]);
  }

  /**
   * Marks a delivery given up (its job failed for good), with the reason; not one recorded as
   * delivered, whose job can still fail as stalled when its process died before finishing it, nor
   * one that does not exist (its job fails for that reason), which would be left as a record of a
   * failure and nothing else.
   */
  async markFailed(deliveryId: string, reason: string): Promise<void> {
    await markFailedUnlessDelivered(this.redis, [this.keys.delivery(deliveryId)], [new Date().toISOString(), reason.slice(0, 300)]);
  }
}
