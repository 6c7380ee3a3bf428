import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'bullmq';
import type { Logger } from '../logger.js';

/** How {@link closeWorker} ended: closed in time, or given up on. */
export type WorkerCloseOutcome = 'closed' | 'abandoned';

/**
 * Closes a BullMQ worker: it takes no new jobs and waits for those in flight, for at most
 * `graceMs`. Past that it stops waiting, logs a warning and answers `abandoned`; a job still
 * running then keeps its lock until it lapses and is recovered as stalled by another worker.
 *
 * The bound is needed beyond slow jobs: `Worker.close()` never settles when it is called while
 * the worker's blocking connection waits out its reconnect delay after a Redis outage (it waits
 * for an `end` event that a connection without a socket never emits; taskforcesh/bullmq#4656).
 */
export async function closeWorker(worker: Worker, graceMs: number, logger?: Logger): Promise<WorkerCloseOutcome> {
  const timer = new AbortController();
  const closed = worker.close().then((): WorkerCloseOutcome => 'closed');
  const gaveUp = sleep(graceMs, 'abandoned' as const, { signal: timer.signal }).catch((): WorkerCloseOutcome => 'abandoned');
  try {
    const outcome = await Promise.race([closed, gaveUp]);
    if (outcome === 'abandoned') logger?.warn({ queue: worker.name, graceMs }, 'queue worker did not close in time; its jobs in flight are retaken once their locks lapse');
    return outcome;
  } finally {
    timer.abort();
  }
}
