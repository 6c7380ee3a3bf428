import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { PromotionLock, PromotionLockLostError, Redis } from '@btd/shared';
import { TEST_REDIS_URL, uniquePrefix } from './helpers/index.js';

const redis = new Redis(TEST_REDIS_URL);
afterAll(async () => {
  await redis.quit();
});

describe('the promotion lock', () => {
  it('keeps its holder in alone while it works past the length of one lease', async () => {
    const key = `${uniquePrefix()}:lock`;
    const lock = new PromotionLock(redis, key, 200);
    const events: string[] = [];
    const first = lock.withLock('tumor-binary', async (lease) => {
      events.push('first in');
      await sleep(900);
      await lease.assertHeld();
      events.push('first out');
    });
    await sleep(50);
    const second = lock.withLock('tumor-binary', async () => {
      events.push('second in');
    }, 5_000);
    await Promise.all([first, second]);
    expect(events).toEqual(['first in', 'first out', 'second in']);
    expect(await redis.exists(key)).toBe(0);
  });

  it('tells a holder whose lease was lost, so that it writes nothing more, and leaves the new holder its lock', async () => {
    const key = `${uniquePrefix()}:lock`;
    const lock = new PromotionLock(redis, key, 5_000);
    const outcome = lock.withLock('tumor-binary', async (lease) => {
      await lease.assertHeld();
      // As if the lease had lapsed and another promoter had taken the lock.
      await redis.set(key, 'someone else');
      await lease.assertHeld();
      return 'wrote the pointer';
    });
    await expect(outcome).rejects.toBeInstanceOf(PromotionLockLostError);
    expect(await redis.get(key)).toBe('someone else');
  });
});
