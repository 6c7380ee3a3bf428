import { randomUUID } from 'node:crypto';
import type { Redis } from '@btd/shared';
import { deleteIfHolds } from './redis-script.js';

/** What {@link whileHolding} gives back: `work`'s value, or `acquired: false` when another held the lock. */
export type Held<T> = { acquired: true; value: T } | { acquired: false };

/**
 * Runs `work` while holding the lock `key` (SET NX PX with a token of its own), and frees it after
 * with the owner-checked delete, so a holder whose lease ran out cannot free a later holder's lock.
 * Does not wait: when another holds the lock, answers `acquired: false` at once.
 */
export async function whileHolding<T>(redis: Redis, key: string, leaseMs: number, work: () => Promise<T>): Promise<Held<T>> {
  const token = randomUUID();
  if ((await redis.set(key, token, 'PX', leaseMs, 'NX')) !== 'OK') return { acquired: false };
  try {
    return { acquired: true, value: await work() };
  } finally {
    // A lock left behind (Redis away) frees itself after its lease.
    await deleteIfHolds(redis, [key], [token]).catch(() => undefined);
  }
}
