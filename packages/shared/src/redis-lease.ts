import type { Redis } from 'ioredis';

// Extends the lease only while the key still holds the holder's token.
const EXTEND_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** A lock's lease kept alive by {@link renewLease}. */
export interface RenewedLease {
  /** Whether a renewal found the lock taken from its holder (its lease had lapsed, another took it). */
  lost(): boolean;
  /** Stops renewing; call it before releasing the lock. */
  stop(): void;
}

/**
 * Renews the lease of a lock its holder took (SET `key` `token` PX `leaseMs` NX) every third of
 * `leaseMs` while the holder works, so that slow work (S3 requests that take their time) does not
 * let another taker in; only a lapse longer than two thirds of the lease (Redis away that long)
 * does, which {@link RenewedLease.lost} then tells. A renewal that fails (Redis unreachable) is
 * tried again at the next turn.
 */
export function renewLease(redis: Redis, key: string, token: string, leaseMs: number): RenewedLease {
  let lost = false;
  const renewal = setInterval(() => {
    redis.eval(EXTEND_SCRIPT, 1, key, token, leaseMs).then(
      (extended) => (lost ||= extended !== 1),
      () => undefined,
    );
  }, leaseMs / 3);
  return { lost: () => lost, stop: () => clearInterval(renewal) };
}
