import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Undoing a failed submission (its records, its external id, its Idempotency-Key claim) waits out
 * a Redis restart of a few seconds (each for about 7.5 s): left undone, a study would stay queued with no job, and its
 * key and external id would answer retries with it.
 */
export const UNDO_PAUSES_MS = [100, 400, 1000, 2000, 4000] as const;

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
