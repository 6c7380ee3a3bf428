import type { Job } from 'bullmq';

/** What BullMQ fails a job with once it stalled (its worker died holding it) more than `maxStalledCount` times. */
const BULLMQ_STALLED_FAILURE = 'job stalled more than allowable limit';

/** Whether BullMQ failed the job for stalling too often, without running it again. */
export function stalledTooOften(job: Job, error: Error): boolean {
  return job.deferredFailure === BULLMQ_STALLED_FAILURE || error.message === BULLMQ_STALLED_FAILURE;
}

/**
 * The failure reason posted for an image whose job stalled too often, in words a PACS integrator
 * reads on the study (GET /v1/studies/:id, the study.completed webhook, the batch view) in place of
 * BullMQ's own. `stalls` is how often its workers stopped (died, were killed, ran out of memory).
 */
export function stalledFailureReason(stalls: number, maxStalledCount: number): string {
  const times = stalls === 1 ? 'once' : `${stalls} times`;
  return `the workers processing this image stopped ${times} before finishing it (the image may crash them); not retried beyond WORKER_MAX_STALLED_COUNT (${maxStalledCount})`;
}
