import { rm } from 'node:fs/promises';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { overlayKey } from '@btd/shared';
import { freePort, redisWaitLines, sampleImages, startTestS3, useRedisServers, waitFor, writeTestModels, type TestS3 } from './helpers/index.js';
import { FAST_RECOVERY, readImage, spawnWorker, startWorkerEnv, type WorkerProcess, type WorkerTestEnv } from './worker-fixtures.js';

let s3: TestS3;
let modelsDir: string;
/** Large enough that a job takes seconds, so a signal reliably lands mid-job. */
let slowImage: Uint8Array;
let env: WorkerTestEnv;
const children: WorkerProcess[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
  modelsDir = await writeTestModels();
  const [file] = await sampleImages('br35h/yes', 1);
  slowImage = await sharp(await readImage(file as string)).resize(2048, 2048).jpeg({ quality: 95 }).toBuffer();
});

afterAll(async () => {
  await s3?.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

beforeEach(async () => {
  env = await startWorkerEnv(s3);
});

afterEach(async () => {
  for (const worker of children.splice(0)) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    await worker.exited;
  }
  await env.close();
});

function start(workerId: string, extra: Record<string, string> = {}, on: WorkerTestEnv = env): WorkerProcess {
  const worker = spawnWorker(on, {
    MODELS_DIR: modelsDir,
    WORKER_ID: workerId,
    WORKER_CONCURRENCY: '1',
    WORKER_LOCK_DURATION_MS: String(FAST_RECOVERY.lockDurationMs),
    WORKER_STALLED_INTERVAL_MS: String(FAST_RECOVERY.stalledIntervalMs),
    WORKER_MAX_STALLED_COUNT: String(FAST_RECOVERY.maxStalledCount),
    ...extra,
  });
  children.push(worker);
  return worker;
}

async function firstActiveJobId(): Promise<string> {
  return waitFor(async () => (await env.inference.getActive())[0]?.id, { intervalMs: 10, what: 'an active job' });
}

describe('inference worker processes', () => {
  it('loses nothing when a worker is killed mid-job: the job completes once, on another worker', async () => {
    const images = [await env.submit(slowImage), await env.submit(slowImage)];
    const doomed = start('worker-a');
    await doomed.ready;
    const killedJobId = await firstActiveJobId();
    doomed.child.kill('SIGKILL');
    expect((await doomed.exited).signal).toBe('SIGKILL');

    const rescuer = start('worker-b');
    await rescuer.ready;
    for (const { imageId } of images) expect((await env.resultOf(imageId, 90_000)).kind).toBe('succeeded');
    await waitFor(async () => (await env.inference.getCompletedCount()) === images.length, { timeoutMs: 30_000 });

    const rescued = await env.inference.getJob(killedJobId);
    expect(rescued?.processedBy).toBe('worker-b');
    expect(rescued?.stalledCounter).toBe(1);
    expect(await env.store.exists(overlayKey(rescued!.data.imageId))).toBe(true);
    // Exactly one result per image, although one image was (partly) processed twice.
    const resultJobs = await env.results.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized']);
    expect(resultJobs.map((job) => job.data.imageId).sort()).toEqual(images.map((image) => image.imageId).sort());
  });

  it('on SIGTERM stops taking jobs, finishes the one in flight, closes and exits 0', async () => {
    const images = [await env.submit(slowImage), await env.submit(slowImage), await env.submit(slowImage)];
    const worker = start('worker-c');
    await worker.ready;
    const inFlight = await firstActiveJobId();
    worker.child.kill('SIGTERM');
    const { code } = await worker.exited;

    expect(code).toBe(0);
    expect(await env.inference.getJobState(inFlight)).toBe('completed');
    expect((await env.inference.getJob(inFlight))?.processedBy).toBe('worker-c');
    expect(await env.inference.getActiveCount()).toBe(0);
    expect(await env.inference.getJobCountByTypes('waiting', 'prioritized')).toBeGreaterThanOrEqual(1);
    const imageId = (await env.inference.getJob(inFlight))!.data.imageId;
    expect((await env.resultOf(imageId, 1000)).kind).toBe('succeeded');
    expect(images.map((image) => image.imageId)).toContain(imageId);
    expect(worker.logs.some((line) => line.includes('"shutdown complete"'))).toBe(true);
  });

  it('started before S3, waits for it, saying so, then loads its models from the registry and takes jobs', async () => {
    await s3.stop();
    let worker: WorkerProcess;
    try {
      worker = start('worker-d', { MODEL_SOURCE: 'registry' });
      await waitFor(() => worker.logs.filter((line) => line.includes('"S3 unreachable at start-up; waiting for it"')).length >= 2, {
        timeoutMs: 30_000,
        what: 'the worker to wait for S3 twice',
      });
      expect(worker.child.exitCode).toBeNull();
    } finally {
      await s3.restart();
    }
    await worker.ready;
    expect(worker.logs.some((line) => line.includes('"S3 reachable; start-up goes on"'))).toBe(true);
    const { imageId } = await env.submit(await readImage((await sampleImages('br35h/no', 1))[0] as string));
    expect((await env.resultOf(imageId, 60_000)).kind).toBe('succeeded');
  }, 90_000);

  describe('started before Redis', () => {
    const startRedis = useRedisServers();

    it('waits for it, saying so, then takes jobs', async () => {
      const port = await freePort();
      const late = await startWorkerEnv(s3, `redis://127.0.0.1:${port}`);
      try {
        const worker = start('worker-e', {}, late);
        await waitFor(() => redisWaitLines(worker.logs).length >= 2, { timeoutMs: 60_000, what: 'the worker to wait for Redis twice' });
        expect(worker.child.exitCode).toBeNull();
        await startRedis({ port });
        await worker.ready;
        expect(worker.logs.some((line) => line.includes('"Redis reachable; start-up goes on"'))).toBe(true);
        const { imageId } = await late.submit(await readImage((await sampleImages('br35h/no', 1))[0] as string));
        expect((await late.resultOf(imageId, 60_000)).kind).toBe('succeeded');
      } finally {
        await late.close();
      }
    }, 120_000);

    it('exits 0 on SIGTERM while it waits', async () => {
      const worker = start('worker-f', { REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
      await waitFor(() => redisWaitLines(worker.logs).length >= 1, { timeoutMs: 60_000, what: 'the worker to wait for Redis' });
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toEqual({ code: 0, signal: null });
      expect(worker.logs.some((line) => line.includes('"shutdown complete"'))).toBe(true);
    });

    it('exits 78 at once, naming REDIS_URL without its password, when Redis refuses the credentials', async () => {
      const redis = await startRedis({ args: ['--requirepass', 'right-password'] });
      const worker = start('worker-g', { REDIS_URL: `redis://:wrong-password@127.0.0.1:${redis.port}` });
      expect(await worker.exited).toEqual({ code: 78, signal: null });
      const fatal = worker.logs.find((line) => line.includes('"level":60')) ?? '';
      expect(fatal).toContain(`REDIS_URL: Redis at redis://:***@127.0.0.1:${redis.port} refused the connection (WRONGPASS`);
      expect(redisWaitLines(worker.logs)).toEqual([]);
      expect(worker.logs.join('\n')).not.toContain('wrong-password');
    });
  });
});
