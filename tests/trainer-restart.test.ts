import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTrainingQueue, enqueueTraining, liveTrainerDatasets, type TrainingProgress, type TrainingQueue, type TrainingResult } from '@btd/shared';
import { datasetsDir, freePort, redisWaitLines, useRedisServers, waitFor } from './helpers/index.js';
import { useRegistryEnv } from './registry-fixtures.js';
import { TINY_TRAINING, datasetRootsWithShared, linkDataset, spawnTrainer, type TrainerProcess } from './trainer-fixtures.js';

const env = useRegistryEnv();
let queue: TrainingQueue;
const children: TrainerProcess[] = [];

beforeEach(async () => {
  queue = createTrainingQueue(env.redis, env.prefix);
});

afterEach(async () => {
  for (const trainer of children.splice(0)) {
    if (trainer.child.exitCode === null && trainer.child.signalCode === null) trainer.child.kill('SIGKILL');
    await trainer.exited;
  }
  await queue.close();
});

function start(extraEnv: Record<string, string> = {}): TrainerProcess {
  const workDir = path.join(env.dir, 'trainer');
  const trainer = spawnTrainer({
    ...env.serviceEnv,
    TRAINER_WORK_DIR: workDir,
    TRAINER_DATASET_ROOTS: datasetRootsWithShared(workDir),
    MODELS_DIR: path.join(env.dir, 'no-bundled-models'),
    // Short locks, so a killed trainer's job is retaken within seconds.
    TRAINER_LOCK_MS: '5000',
    ...extraEnv,
  });
  children.push(trainer);
  return trainer;
}

async function progressOf(jobId: string): Promise<TrainingProgress | undefined> {
  const job = await queue.getJob(jobId);
  return typeof job?.progress === 'object' ? (job.progress as TrainingProgress) : undefined;
}

/** Waits until the job's progress satisfies `ready` (progress is replaced whole by each trainer). */
const progressUntil = (jobId: string, ready: (p: TrainingProgress) => boolean, what: string) =>
  waitFor(async () => {
    const progress = await progressOf(jobId);
    return progress && ready(progress) ? progress : undefined;
  }, { timeoutMs: 150_000, intervalMs: 100, what });

describe('a trainer restarted mid-training', () => {
  it('resumes from the last epoch checkpoint after a graceful stop and after a crash, and publishes once', async () => {
    const epochs = 4;
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'set'), 20, 80);
    const job = await enqueueTraining(queue, 'restart', {
      task: 'tumor-binary',
      dataset: { kind: 'local', path: dataset },
      hyperParameters: { ...TINY_TRAINING, epochs },
      requestedBy: 'ops',
    });
    const jobId = job.id!;

    // Graceful stop once an epoch is done: the run goes back to the queue, nothing is published.
    const first = start();
    await first.ready;
    await progressUntil(jobId, (p) => (p.epoch ?? 0) >= 1, 'the first epoch');
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    const stoppedAfter = (await progressOf(jobId))!.epoch!;
    expect(stoppedAfter).toBeLessThan(epochs);
    expect(['delayed', 'waiting']).toContain(await (await queue.getJob(jobId))!.getState());
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([]);

    // The next trainer continues after that epoch, finishes one more, then crashes without any chance to clean up.
    const second = start();
    const resumed = await progressUntil(jobId, (p) => p.resumedFromEpoch !== undefined && (p.epoch ?? 0) > p.resumedFromEpoch, 'a resumed epoch');
    expect(resumed.resumedFromEpoch).toBe(stoppedAfter);
    second.child.kill('SIGKILL');
    await second.exited;
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([]);

    // A third trainer takes the stalled job over and runs the remaining epochs from the last checkpoint.
    const third = start();
    const result = (await waitFor(async () => (await queue.getJob(jobId))?.returnvalue, { timeoutMs: 240_000, intervalMs: 200 })) as TrainingResult;
    expect((await queue.getJob(jobId))!.stalledCounter).toBeGreaterThanOrEqual(1);
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([result.version]);
    const history = JSON.parse((await env.registry.readFile('tumor-binary', result.version, 'history.json')).toString()) as unknown[];
    expect(history).toHaveLength(epochs);
    expect(third.logs.some((line) => line.includes('"training finished"'))).toBe(true);
  }, 400_000);
});

describe('a trainer with an evaluation set it cannot use', () => {
  it('publishes the dataset folders it can read while it runs, and withdraws them when stopped', async () => {
    const workDir = path.join(env.dir, 'trainer');
    await linkDataset(path.join(workDir, 'set'), 1, 0);
    const trainer = start();
    await trainer.ready;
    // The shared datasets, which the linked images lead to, are a root of their own when present.
    const shared = datasetsDir();
    const sharedRoot = shared ? [{ path: shared, folders: expect.any(Array), unlisted: expect.any(Array) }] : [];
    expect(await liveTrainerDatasets(env.redis, env.prefix)).toEqual([
      { trainer: expect.any(String), cwd: process.cwd(), roots: [{ path: workDir, folders: expect.arrayContaining(['set', 'set/yes']), unlisted: expect.any(Array) }, ...sharedRoot] },
    ]);
    trainer.child.kill('SIGTERM');
    expect(await trainer.exited).toEqual({ code: 0, signal: null });
    expect(await liveTrainerDatasets(env.redis, env.prefix)).toEqual([]);
  });

  it('refuses to start, naming the setting, with the exit code of invalid configuration', async () => {
    const missing = path.join(env.dir, 'eval-sets', 'tumor-binry');
    // A folder marker alone is no evaluation set.
    await env.store.put('eval-sets/empty/', '', 'application/x-directory');
    const trainer = start({ EVAL_SET_TUMOR_BINARY: missing, EVAL_SET_TUMOR_TYPE: 's3://eval-sets/empty/' });
    await expect(trainer.ready).rejects.toThrow(/exited with 78/);
    expect(await trainer.exited).toEqual({ code: 78, signal: null });
    const fatal = trainer.logs.find((line) => line.includes('"trainer could not start'));
    expect(fatal).toContain(`EVAL_SET_TUMOR_BINARY: evaluation set of tumor-binary cannot be used: dataset folder ${missing} does not exist`);
    expect(fatal).toContain('EVAL_SET_TUMOR_TYPE: evaluation set of tumor-type cannot be used: no objects under s3://');

    // Once both are there, it starts.
    await mkdir(missing, { recursive: true });
    await env.store.put('eval-sets/empty/glioma/a.jpg', 'x', 'image/jpeg');
    const fixed = start({ EVAL_SET_TUMOR_BINARY: missing, EVAL_SET_TUMOR_TYPE: 's3://eval-sets/empty/' });
    await fixed.ready;
    fixed.child.kill('SIGTERM');
    expect(await fixed.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});

describe('a trainer started before S3', () => {
  it('waits for S3, saying so, then checks its settings and starts', async () => {
    const evalSet = 'eval-sets/binary/';
    await env.store.put(`${evalSet}yes/a.jpg`, 'x', 'image/jpeg');
    await env.s3.stop();
    let trainer: TrainerProcess;
    try {
      trainer = start({ EVAL_SET_TUMOR_BINARY: `s3://${evalSet}` });
      await waitFor(() => trainer.logs.filter((line) => line.includes('"S3 unreachable at start-up; waiting for it"')).length >= 2, {
        timeoutMs: 30_000,
        what: 'the trainer to wait for S3 twice',
      });
      expect(trainer.child.exitCode).toBeNull();
    } finally {
      await env.s3.restart();
    }
    await trainer.ready;
    expect(trainer.logs.some((line) => line.includes('"S3 reachable; start-up goes on"'))).toBe(true);
    trainer.child.kill('SIGTERM');
    expect(await trainer.exited).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('refuses to start at once, with the exit code of invalid configuration, when S3 refuses its credentials', async () => {
    const trainer = start({ S3_ACCESS_KEY_ID: 'NOT-A-KEY' });
    await expect(trainer.ready).rejects.toThrow(/exited with 78/);
    const fatal = trainer.logs.find((line) => line.includes('"trainer could not start'));
    expect(fatal).toContain('S3_ACCESS_KEY_ID: S3 refused access to bucket');
  }, 30_000);

  it('refuses to start, naming the setting, when an S3 evaluation set is missing once S3 answers', async () => {
    await env.s3.stop();
    let trainer: TrainerProcess;
    try {
      trainer = start({ EVAL_SET_TUMOR_TYPE: 's3://eval-sets/none/' });
      await waitFor(() => trainer.logs.some((line) => line.includes('"S3 unreachable at start-up; waiting for it"')), { timeoutMs: 30_000, what: 'the trainer to wait for S3' });
    } finally {
      await env.s3.restart();
    }
    expect(await trainer.exited).toEqual({ code: 78, signal: null });
    expect(trainer.logs.find((line) => line.includes('"trainer could not start'))).toContain('EVAL_SET_TUMOR_TYPE: evaluation set of tumor-type cannot be used');
  }, 60_000);
});

describe('a trainer started before Redis', () => {
  const startRedis = useRedisServers();

  it('waits for Redis, saying so, then starts', async () => {
    const port = await freePort();
    const trainer = start({ REDIS_URL: `redis://127.0.0.1:${port}` });
    await waitFor(() => redisWaitLines(trainer.logs).length >= 2, { timeoutMs: 60_000, what: 'the trainer to wait for Redis twice' });
    expect(trainer.child.exitCode).toBeNull();
    await startRedis({ port });
    await trainer.ready;
    expect(trainer.logs.some((line) => line.includes('"Redis reachable; start-up goes on"'))).toBe(true);
    trainer.child.kill('SIGTERM');
    expect(await trainer.exited).toEqual({ code: 0, signal: null });
  }, 90_000);

  it('refuses to start at once, with the exit code of invalid configuration, when Redis refuses its credentials', async () => {
    const redis = await startRedis({ args: ['--requirepass', 'right-password'] });
    const trainer = start({ REDIS_URL: `redis://:wrong-password@127.0.0.1:${redis.port}` });
    expect(await trainer.exited).toEqual({ code: 78, signal: null });
    const fatal = trainer.logs.find((line) => line.includes('"trainer could not start'));
    expect(fatal).toContain(`REDIS_URL: Redis at redis://:***@127.0.0.1:${redis.port} refused the connection (WRONGPASS`);
    expect(redisWaitLines(trainer.logs)).toEqual([]);
    expect(trainer.logs.join('\n')).not.toContain('wrong-password');
  }, 60_000);
});
