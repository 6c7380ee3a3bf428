import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from '@btd/shared';
import { ExternalIdStore } from '../services/api/src/store/external-id-store.js';
import { recordKeys } from '../services/api/src/store/record-keys.js';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from './helpers/index.js';

const redis = new Redis(TEST_REDIS_URL);
const prefix = uniquePrefix();
const keys = recordKeys(prefix);
const store = new ExternalIdStore(redis, keys);
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
});

describe('external-id claims', () => {
  it('gives a free id to the first claimant and names the holder to the next', async () => {
    expect(await store.claim('alice', 'ACC-1', 'stu_a')).toBeUndefined();
    expect(await store.claim('alice', 'ACC-1', 'stu_b')).toBe('stu_a');
    expect(await store.claim('bob', 'ACC-1', 'stu_c')).toBeUndefined();
    expect(await redis.ttl(keys.externalId('alice', 'ACC-1'))).toBeGreaterThan(0);
  });

  it('never reports an id as its own unless it holds it, even as the holder lapses', async () => {
    // Another submission's claim expires within a few milliseconds, around the moment of this claim.
    for (let round = 0; round < 200; round++) {
      const key = keys.externalId('alice', `ACC-lapse-${round}`);
      await redis.set(key, 'stu_other', 'PX', 2);
      await sleep(round % 4);
      const holder = await store.claim('alice', `ACC-lapse-${round}`, 'stu_mine');
      if (holder === undefined) expect(await redis.get(key)).toBe('stu_mine');
      else expect(holder).toBe('stu_other');
    }
  });
});
