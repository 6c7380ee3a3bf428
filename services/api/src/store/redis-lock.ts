import { randomUUID } from 'node:crypto';
import { renewLease, type Redis, type RenewedLease } from '@btd/shared';
import { deleteIfHolds } from './redis-script.js';

/** What {@link whileHolding} gives back: `work`'s value, or `acquired: false` when another held the lock. */
export type Held<T> = { acquired: true; value: T } | { acquired: false };

/**
 * Runs `work` while holding the lock `key` (SET NX PX with a token of its own), its lease renewed
 * while the work runs however long it takes, and frees it after with the owner-checked delete, so a
 * holder whose lease ran out (Redis away longer than most of a lease) cannot free a later holder's
 * lock; `work` can ask its lease whether that happened. Does not wait: when another holds the lock,
 * answers `acquired: false` at once.
 */
export async function whileHolding<T>(redis: Redis, key: string, leaseMs: number, work: (lease: Pick<RenewedLease, 'lost'>) => Promise<T>): Promise<Held<T>> {
  const token = randomUUID();
  if ((await redis.set(key, token, 'PX', leaseMs, 'NX')) !== 'OK') return { acquired: false };
  const lease = renewLease(redis, key, token, leaseMs);
  try {
    return { acquired: true, value: await work(lease) };
  } finally {
    lease.stop();
    // A lock left behind (Redis away) frees itself after its lease.
    await deleteIfHolds(redis, [key], [token]).catch(() => undefined);
  }
}
