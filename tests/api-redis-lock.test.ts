import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from '@btd/shared';
import { whileHolding } from '../services/api/src/store/redis-lock.js';
import { TEST_REDIS_URL, uniquePrefix } from './helpers/index.js';

const redis = new Redis(TEST_REDIS_URL);
afterAll(async () => {
  await redis.quit();
});

describe('a lock held while work runs', () => {
  it('keeps its holder in alone while the work outlasts its lease, then frees it', async () => {
    const key = `${uniquePrefix()}:lock`;
    const taken: boolean[] = [];
    const held = whileHolding(redis, key, 300, async () => {
      // Another taker tries every 100 ms for three leases' time.
      for (let i = 0; i < 10; i++) {
        await sleep(100);
        taken.push((await whileHolding(redis, key, 300, async () => 'taken')).acquired);
      }
      return 'done';
    });
    expect(await held).toEqual({ acquired: true, value: 'done' });
    expect(taken).toEqual(Array<boolean>(10).fill(false));
    expect(await redis.exists(key)).toBe(0);
  });

  it('tells the work that its lock was lost (its lease lapsed while Redis was away), and leaves the new holder its lock', async () => {
    const key = `${uniquePrefix()}:lock`;
    const held = await whileHolding(redis, key, 300, async (lease) => {
      expect(lease.lost()).toBe(false);
      // As if the lease had lapsed and another had taken the lock.
      await redis.set(key, 'someone else');
      await sleep(250);
      return lease.lost();
    });
    expect(held).toEqual({ acquired: true, value: true });
    expect(await redis.get(key)).toBe('someone else');
    await redis.del(key);
  });
});
