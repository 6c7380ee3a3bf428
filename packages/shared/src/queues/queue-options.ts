import { Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';

/**
 * Retry delays double on each attempt and are spread by ±50 % jitter, so jobs that failed
 * together (say, during an S3 outage) do not all retry in the same instant.
 */
export function exponentialBackoff(firstDelayMs: number): NonNullable<DefaultJobOptions['backoff']> {
  return { type: 'exponential', delay: firstDelayMs, jitter: 0.5 };
}

/** Completed jobs are kept a day (for job-id dedup and inspection), at most 10 000 of them. */
export const KEEP_COMPLETED = { age: 24 * 3600, count: 10_000 } as const;

/** Failed jobs are kept a week so operators can look at them. */
export const KEEP_FAILED = { age: 7 * 24 * 3600, count: 50_000 } as const;

/**
 * Creates a typed BullMQ queue. Queue modules wrap this with their own name and job options.
 *
 * @param connection an ioredis client (see `createProducerConnection`) or connection options
 * @param prefix the Redis key prefix (`QUEUE_PREFIX`)
 */
export function createQueue<T>(
  name: string,
  connection: ConnectionOptions,
  prefix: string,
  defaultJobOptions: DefaultJobOptions,
): Queue<T> {
  return new Queue<T>(name, { connection, prefix, defaultJobOptions });
}

/**
 * BullMQ job ids may not contain ':' (it separates Redis key parts) and may not be integers;
 * `<kind>-<id>` satisfies both and keeps ids deterministic, so adding the same job twice is a no-op.
 */
export function deterministicJobId(kind: string, id: string): string {
  return `${kind}-${id}`.replaceAll(':', '_');
}
