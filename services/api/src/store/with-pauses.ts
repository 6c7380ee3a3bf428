import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Pauses between attempts of a Redis write that must not be lost to a Redis restart of a few
 * seconds: about 7.5 s in all.
 */
export const REDIS_RESTART_PAUSES_MS = [100, 400, 1000, 2000, 4000] as const;

/**
 * Pauses between attempts to undo a failed submission (remove its records, free its external id
 * and its Idempotency-Key claim): about 7.5 s in all for each, which waits out a Redis restart of
 * a few seconds. Left undone, the study would stay queued with no job, and its key and external id
 * would answer retries with it.
 */
export const UNDO_PAUSES_MS = REDIS_RESTART_PAUSES_MS;

/** Runs `work`, and again after each pause while it fails; the last failure is thrown. */
export async function withPauses<T>(work: () => Promise<T>, pausesMs: readonly number[]): Promise<T> {
  for (const pause of pausesMs) {
    try {
      return await work();
    } catch {
      await sleep(pause);
    }
  }
  return work();
}
