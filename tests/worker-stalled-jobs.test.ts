import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INFERENCE_QUEUE, closeRedis, createWorkerConnection } from '@btd/shared';
import { startInferenceWorker, type ModelProvider } from '@btd/inference-worker';
import { TEST_REDIS_URL, dyingWorker, startTestS3, type TestS3 } from './helpers/index.js';
import { startWorkerEnv } from './worker-fixtures.js';

/** WORKER_MAX_STALLED_COUNT of the test's workers. */
const MAX_STALLED = 1;

/** The job is failed before it runs: no model is ever taken. */
const noModels: ModelProvider = {
  acquire() {
    throw new Error('no model is taken for a job that stalled too often');
  },
};

interface LogLine {
  level: number;
  msg: string;
  studyId?: string;
  imageId?: string;
  stalls?: number;
}

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3.close();
});

describe('an inference job whose workers die holding it', () => {
  it('fails its image, once it stalled more than WORKER_MAX_STALLED_COUNT times, with a reason a client can read, logged at error naming the study and image', async () => {
    const env = await startWorkerEnv(s3);
    try {
      const { studyId, imageId, jobId } = await env.submit(new Uint8Array([0xff, 0xd8, 0xff]));

      // Workers that take the job and die holding it, as often as the count allows and once more.
      const dying = dyingWorker(env.redis, INFERENCE_QUEUE, env.prefix, MAX_STALLED);
      try {
        for (let stall = 0; stall <= MAX_STALLED; stall++) {
          expect(await dying.takeAndDie(`dying-worker-${stall}`)).toBe(jobId);
          await dying.checkStalled();
          await dying.checkStalled();
        }
      } finally {
        await dying.close();
      }

      const lines: LogLine[] = [];
      const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
      const workerConnection = createWorkerConnection(TEST_REDIS_URL);
      const running = startInferenceWorker({
        config: { queuePrefix: env.prefix, concurrency: 1, lockDurationMs: 30_000, stalledIntervalMs: 30_000, maxStalledCount: MAX_STALLED },
        connection: workerConnection,
        store: env.store,
        results: env.results,
        models: noModels,
        logger,
      });
      try {
        const result = await env.resultOf(imageId);
        expect(result).toMatchObject({
          kind: 'failed',
          studyId,
          imageId,
          reason: `the workers processing this image stopped 2 times before finishing it (the image may crash them); not retried beyond WORKER_MAX_STALLED_COUNT (${MAX_STALLED})`,
        });
        expect(lines.filter((line) => line.level >= 50)).toEqual([
          expect.objectContaining({ studyId, imageId, stalls: 2, msg: expect.stringContaining('the workers processing it stopped too often') }),
        ]);
      } finally {
        await running.close();
        await closeRedis(workerConnection);
      }
    } finally {
      await env.close();
    }
  }, 60_000);
});
