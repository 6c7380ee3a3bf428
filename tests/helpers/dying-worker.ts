import { Worker } from 'bullmq';
import { createWorkerConnection, type Redis } from '@btd/shared';
import { TEST_REDIS_URL } from './test-redis.js';
import { sleep } from './wait-for.js';

/** A process that takes a queue's jobs and dies holding them, and the stall check of the queue's workers, run by hand. */
export interface DyingWorker {
  /** Takes the next job, naming its lock `token`, and lets the lock lapse (as a worker killed -9 would); resolves with the job's id. */
  takeAndDie(token: string): Promise<string | undefined>;
  /**
   * Runs BullMQ's stall check now. It takes two: the first marks the active jobs, the next moves
   * those still unlocked back to waiting, or, past `maxStalledCount`, marks them to fail when next taken.
   */
  checkStalled(): Promise<void>;
  close(): Promise<void>;
}

/** A {@link DyingWorker} of `queue` under `prefix`, whose checks allow `maxStalledCount` stalls; `redis` clears the checks' marker. */
export function dyingWorker(redis: Redis, queue: string, prefix: string, maxStalledCount: number): DyingWorker {
  const connection = createWorkerConnection(TEST_REDIS_URL);
  const worker = new Worker(queue, null, { connection, prefix, autorun: false, lockDuration: 100, maxStalledCount });
  return {
    async takeAndDie(token) {
      const job = await worker.getNextJob(token, { block: false });
      await sleep(150);
      return job?.id;
    },
    async checkStalled() {
      // A check leaves a marker that skips every other check for its stalled interval (30 s for
      // a worker or API started with the defaults): the next check is due.
      await redis.del(`${prefix}:${queue}:stalled-check`);
      await (worker as unknown as { moveStalledJobsToWait(): Promise<void> }).moveStalledJobsToWait();
    },
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}
