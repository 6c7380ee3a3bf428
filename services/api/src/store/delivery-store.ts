import type { Redis } from '@btd/shared';
import type { RecordKeys } from './record-keys.js';
import { JSON_FIELDS, fromHash, toHash, type DeliveryRecord } from './records.js';
import { LUA_HSET_JSON, redisScript } from './redis-script.js';

const createIfMissing = redisScript(`${LUA_HSET_JSON}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
hsetJson(KEYS[1], ARGV[1])
return 1
`);

const markFailedUnlessDelivered = redisScript(`
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'deliveredAt') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'failedAt', ARGV[1], 'failedReason', ARGV[2])
return 1
`);

/** Webhook deliveries: URL, body and attempt history, kept out of the queue's job data. */
export class DeliveryStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RecordKeys,
  ) {}

  /** Creates the delivery unless it exists; the first body written wins, so retries resend the same bytes. */
  async createOnce(delivery: Omit<DeliveryRecord, 'attempts'>): Promise<void> {
    const fields = JSON.stringify(toHash({ ...delivery, attempts: 0 }));
    await createIfMissing(this.redis, [this.keys.delivery(delivery.id)], [fields]);
  }

  async get(deliveryId: string): Promise<DeliveryRecord | undefined> {
    return fromHash<DeliveryRecord>(await this.redis.hgetall(this.keys.delivery(deliveryId)), JSON_FIELDS.delivery);
  }

  /** Records one attempt and its HTTP status (0 when no response came back). */
  async recordAttempt(deliveryId: string, status: number, error: string | undefined): Promise<void> {
    const key = this.keys.delivery(deliveryId);
    const multi = this.redis.multi().hincrby(key, 'attempts', 1).hset(key, 'lastStatus', String(status));
    if (error) multi.hset(key, 'lastError', error.slice(0, 300));
    else multi.hdel(key, 'lastError');
    if (status >= 200 && status < 300) multi.hset(key, 'deliveredAt', new Date().toISOString());
    await multi.exec();
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
