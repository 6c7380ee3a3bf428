import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { renewLease } from '../redis-lease.js';
import { PromotionLockLostError, PromotionLockTimeoutError } from './registry.errors.js';

// Deletes the key only if it still holds our token, so a holder whose lease expired cannot release
// the lock a later holder took.
const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** What a holder of the lock can ask of it. */
export interface LockLease {
  /** Throws {@link PromotionLockLostError} unless the lock is still this holder's; call it before a write that must be exclusive. */
  assertHeld(): Promise<void>;
}

/** How a lock's errors name it; without it, they speak of the promotion of the task. */
export interface LockWording {
  /** Who holds the lock, when a wait for it times out: `another write of the status of … is in progress`. */
  busy: string;
  /** The lock, when its lease lapsed: `the status lock of …`. */
  lock: string;
  /** What its holder writes under it: `the status`. */
  writes: string;
}

/**
 * A lease-based mutual exclusion on one Redis key (SET NX PX + token-checked delete). S3 has no
 * compare-and-swap, so promoters serialise here before reading and rewriting the pointer. The lease
 * is renewed every third of its length while its holder works, so slow S3 requests do not let a
 * second promoter in; a holder that lost it anyway learns so from {@link LockLease.assertHeld}.
 */
export class PromotionLock {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly ttlMs = 30_000,
    private readonly wording?: LockWording,
  ) {}

  /** Runs `fn` while holding the lock; waits up to `waitMs` for it. */
  async withLock<T>(task: string, fn: (lease: LockLease) => Promise<T>, waitMs = 10_000): Promise<T> {
    const token = randomUUID();
    const started = Date.now();
    let delay = 25;
    while ((await this.redis.set(this.key, token, 'PX', this.ttlMs, 'NX')) !== 'OK') {
      const waited = Date.now() - started;
      if (waited >= waitMs) throw new PromotionLockTimeoutError(task, waited, this.wording?.busy);
      // Jitter keeps competing promoters from retrying in lock-step.
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 500);
    }
    // A failed renewal (Redis unreachable) is left to assertHeld, whose read fails the same way.
    const renewal = renewLease(this.redis, this.key, token, this.ttlMs);
    let lost = false;
    const lease: LockLease = {
      assertHeld: async () => {
        lost ||= renewal.lost() || (await this.redis.get(this.key)) !== token;
        if (lost) throw new PromotionLockLostError(task, this.wording?.lock, this.wording?.writes);
      },
    };
    try {
      return await fn(lease);
    } finally {
      renewal.stop();
      await this.redis.eval(RELEASE_SCRIPT, 1, this.key, token);
    }
  }
}
