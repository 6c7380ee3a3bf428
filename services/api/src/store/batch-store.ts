import type { Redis } from '@btd/shared';
import type { RecordKeys } from './record-keys.js';
import { JSON_FIELDS, fromHash, toHash, type BatchRecord, type BatchState } from './records.js';
import { closeBatchScript } from './study-scripts.js';

/** Batches: a hash each, plus a sorted set of their studies in submission order. */
export class BatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RecordKeys,
  ) {}

  async create(batch: BatchRecord): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.batch(batch.id), toHash(batch))
      .zadd(this.keys.clientBatches(batch.clientId), Date.parse(batch.createdAt), batch.id)
      .exec();
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
