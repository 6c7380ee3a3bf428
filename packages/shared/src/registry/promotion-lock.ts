import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { PromotionLockTimeoutError } from './registry.errors.js';

// Deletes the key only if it still holds our token, so a holder whose lease expired cannot release
// the lock a later holder took.
const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * A lease-based mutual exclusion on one Redis key (SET NX PX + token-checked delete). S3 has no
 * compare-and-swap, so promoters serialise here before reading and rewriting the pointer.
 */
export class PromotionLock {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly ttlMs = 30_000,
  ) {}

  /** Runs `fn` while holding the lock; waits up to `waitMs` for it. */
  async withLock<T>(task: string, fn: () => Promise<T>, waitMs = 10_000): Promise<T> {
    const token = randomUUID();
    const started = Date.now();
    let delay = 25;
    while ((await this.redis.set(this.key, token, 'PX', this.ttlMs, 'NX')) !== 'OK') {
      const waited = Date.now() - started;
      if (waited >= waitMs) throw new PromotionLockTimeoutError(task, waited);
      // Jitter keeps competing promoters from retrying in lock-step.
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 500);
    }
    try {
      return await fn();
    } finally {
      await this.redis.eval(RELEASE_SCRIPT, 1, this.key, token);
    }
  }
}
