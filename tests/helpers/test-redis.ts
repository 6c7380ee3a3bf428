import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { Redis } from '@btd/shared';

/** Redis the tests run against, chosen by the global setup: the machine's own unless `REDIS_URL` or `TEST_CONTAINERS` say otherwise. */
export const TEST_REDIS_URL = inject('testRedisUrl');

/** A queue prefix no other test uses, so tests can run in parallel on one Redis. */
export function uniquePrefix(): string {
  return `test-${randomUUID()}`;
}

/** Every key under a queue prefix. */
export async function keysWithPrefix(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

/** Deletes every key under a queue prefix; returns how many were deleted. */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  const keys = await keysWithPrefix(redis, prefix);
  for (let start = 0; start < keys.length; start += 500) await redis.del(...keys.slice(start, start + 500));
  return keys.length;
}
