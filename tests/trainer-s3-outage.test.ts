import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { TRAINING_JOB_NAME, TrainingProgressSchema, outageOf, type TrainingJob, type TrainingProgress, type TrainingResult } from '@btd/shared';
import type { Trainer } from '../services/trainer/src/trainer.js';
import { promoteConstantBaseline, useRegistryEnv } from './registry-fixtures.js';
import { sleep, waitFor } from './helpers/index.js';
import { TINY_TRAINING, linkDataset, uploadDataset, useTrainerTestBed } from './trainer-fixtures.js';

/** Two attempts 100 ms apart: the whole retry span an outage would have to outlast is a tenth of a second. */
const SHORT_RETRIES = { attempts: 2, backoff: { type: 'fixed', delay: 100 } } as const;

const env = useRegistryEnv();
const bed = useTrainerTestBed(env);

/** Starts a trainer whose trainings try again at most 500 ms apart while S3 stays unreachable. */
const start = (overrides: Parameters<typeof bed.start>[0] = {}): Trainer => bed.start({ s3OutageMaxDelayMs: 500, ...overrides });

/** The epochs a job reported training, in order. */
const epochsOf = (jobId: string): number[] => (bed.progress.get(jobId) ?? []).flatMap((p) => (p.phase === 'training' && p.epoch !== undefined ? [p.epoch] : []));

/** Enqueues a tiny training with {@link SHORT_RETRIES}: without waiting for S3, an outage fails it at once. */
async function submit(id: string, dataset: TrainingJob['dataset'], epochCount: number) {
  const request: TrainingJob = { task: 'tumor-binary', dataset, hyperParameters: { ...TINY_TRAINING, epochs: epochCount }, requestedBy: 'ops' };
  return bed.queue.add(TRAINING_JOB_NAME, request, { jobId: id, ...SHORT_RETRIES });
}

async function jobOf(jobId: string) {
  const job = await bed.queue.getJob(jobId);
  if (!job) throw new Error(`job ${jobId} is gone`);
  return job;
}

/**
 * A training the gate passes: a promoted baseline that calls every image no_tumor, a tumour-only
 * evaluation set, and a local dataset of `images` per class from `offset` on.
 */
async function gatedTraining(offset: number, images = 16) {
  const baseline = await promoteConstantBaseline(env, 'no_tumor');
  const dataset = { kind: 'local', path: await linkDataset(path.join(env.dir, 'trainer', 'set'), images, offset) } as const;
  const evalSet = await linkDataset(path.join(env.dir, 'trainer', 'eval'), { yes: 8, no: 0 }, 300);
  return { baseline, dataset, evalSet };
}

/**
 * Once the job has waited for S3 for a few of its tries (or, wrongly, ended), checks that it is
 * waiting in the delayed set, its attempts unspent, with the outage met in `phase` in its progress.
 */
async function expectWaitingForS3(jobId: string, phase: TrainingProgress['phase']) {
  await waitFor(
    async () => {
      const job = await jobOf(jobId);
      return (outageOf(job) !== undefined && job.attemptsStarted >= 3) || job.finishedOn !== undefined;
    },
    { timeoutMs: 180_000, intervalMs: 100, what: 'the training to be tried three times' },
  );
  await sleep(500);
  const waiting = await jobOf(jobId);
  expect([waiting.attemptsMade, waiting.failedReason, waiting.finishedOn]).toEqual([0, undefined, undefined]);
  expect(['delayed', 'waiting', 'active']).toContain(await waiting.getState());
  expect(waiting.progress).toMatchObject({ s3UnavailableSince: expect.any(Number), s3UnavailableDuring: phase });
  // What `GET /v1/trainings/:id` shows: a phase with the outage.
  expect(Value.Check(TrainingProgressSchema, waiting.progress)).toBe(true);
  return waiting;
}

const workspaceOf = (jobId: string) => path.join(env.dir, 'trainer', 'jobs', jobId);

describe('the trainer during an S3 outage', () => {
  it('waits for S3 to come back when it finds it unreachable from the start, without spending an attempt', async () => {
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'set'), 16, 180);
    await env.s3.stop();
    try {
      start();
      const job = await submit('training-outage-start', { kind: 'local', path: dataset }, 1);
      const waiting = await expectWaitingForS3(job.id!, 'preparing');
      expect(waiting.progress).toMatchObject({ phase: 'preparing' });
    } finally {
      await env.s3.restart();
    }
    const result = (await (await jobOf('training-outage-start')).waitUntilFinished(bed.events, 180_000)) as TrainingResult;
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([result.version]);
  }, 300_000);

  it('waits out an outage that begins while its dataset is mirrored without spending an attempt, then trains and publishes', async () => {
    await uploadDataset(env.store, 'datasets/tiny/', 16, 200);
    // S3 goes down as the mirror reads its first image.
    const get = env.store.get.bind(env.store);
    let outage: Promise<void> | undefined;
    env.store.get = async (key, options) => {
      if (key.startsWith('datasets/tiny/')) await (outage ??= env.s3.stop());
      return get(key, options);
    };
    start();
    const job = await submit('training-outage-mirror', { kind: 's3', prefix: 'datasets/tiny/' }, 1);
    try {
      await waitFor(() => outage !== undefined, { timeoutMs: 30_000, what: 'the mirror to begin' });
      await expectWaitingForS3(job.id!, 'preparing');
    } finally {
      await outage;
      await env.s3.restart();
    }
    const result = (await job.waitUntilFinished(bed.events, 180_000)) as TrainingResult;
    const done = await jobOf(job.id!);
    expect([done.attemptsMade, outageOf(done)]).toEqual([1, undefined]);
    expect(done.progress).toMatchObject({ phase: 'done', epoch: 1 });
    expect(epochsOf(job.id!)).toEqual([1]);
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([result.version]);
  }, 300_000);

  it('trains on through an outage that begins during its epochs, waits for S3 at the gate keeping its checkpoint, then publishes once', async () => {
    const { baseline, dataset, evalSet } = await gatedTraining(220, 20);
    const running = start({ evalSetTumorBinary: evalSet });
    // S3 goes down once the first epoch is done; training needs no S3 and goes on. The gate's first
    // S3 read waits for the server to be down, so that the outage is met there however fast the
    // epochs run, instead of racing the stop against the last one.
    let outage: Promise<void> | undefined;
    running.worker.on('progress', (_job, progress) => {
      if ((progress as TrainingProgress).epoch !== undefined) outage ??= env.s3.stop();
    });
    const promoted = env.registry.promoted.bind(env.registry);
    env.registry.promoted = async (task) => {
      await waitFor(() => outage !== undefined, { timeoutMs: 30_000, what: 'the outage to begin' });
      await outage;
      return promoted(task);
    };
    const job = await submit('training-outage-gate', dataset, 4);
    try {
      await waitFor(() => outage !== undefined, { timeoutMs: 180_000, what: 'the first epoch' });
      await outage;
      const waiting = await expectWaitingForS3(job.id!, 'evaluating');
      expect(waiting.progress).toMatchObject({ phase: 'evaluating', epoch: 4 });
      expect(epochsOf(job.id!)).toEqual([1, 2, 3, 4]);
      expect((await readdir(path.join(workspaceOf(job.id!), 'checkpoint'))).length).toBeGreaterThan(0);
    } finally {
      await outage;
      await env.s3.restart();
    }
    const result = (await job.waitUntilFinished(bed.events, 180_000)) as TrainingResult;
    expect(result).toMatchObject({ promoted: true });
    // Resumed from the checkpoint of the last epoch: no epoch ran twice.
    expect(epochsOf(job.id!)).toEqual([1, 2, 3, 4]);
    expect((await env.registry.listVersionIds('tumor-binary')).sort()).toEqual([baseline, result.version].sort());
    expect(await stat(workspaceOf(job.id!)).catch(() => null)).toBeNull();
  }, 300_000);

  it('finishes the version it published when S3 goes down right after publishing, instead of publishing a second one', async () => {
    const { baseline, dataset, evalSet } = await gatedTraining(240);
    // S3 goes down as soon as the candidate's digest is written, which makes its version complete.
    const putJson = env.store.putJson.bind(env.store);
    let outage: Promise<void> | undefined;
    env.store.putJson = async (key, value) => {
      await putJson(key, value);
      if (key.endsWith('/content-hash.json')) await (outage ??= env.s3.stop());
    };
    start({ evalSetTumorBinary: evalSet });
    const job = await submit('training-outage-publish', dataset, 1);
    try {
      await waitFor(() => outage !== undefined, { timeoutMs: 180_000, what: 'the candidate to be published' });
      await expectWaitingForS3(job.id!, 'publishing');
    } finally {
      await outage;
      await env.s3.restart();
    }
    const result = (await job.waitUntilFinished(bed.events, 180_000)) as TrainingResult;
    expect(result).toMatchObject({ promoted: true });
    expect((await env.registry.listVersionIds('tumor-binary')).sort()).toEqual([baseline, result.version].sort());
    expect(await env.registry.status('tumor-binary', result.version)).toMatchObject({ source: { kind: 'training', jobId: job.id } });
    expect((await env.registry.history('tumor-binary')).map((r) => r.version)).toEqual([result.version, baseline]);
    expect(epochsOf(job.id!)).toEqual([1]);
  }, 300_000);

  it('counts one budget across tries that get through earlier phases but keep finding S3 unavailable in the same one, then fails as before', async () => {
    const { baseline, dataset, evalSet } = await gatedTraining(280);
    // S3 answers every request but those for the promoted model, which it keeps refusing with 503,
    // as a store does that is overloaded where that model lives.
    const get = env.store.get.bind(env.store);
    env.store.get = async (key, options) => {
      if (key.startsWith(`models/tumor-binary/${baseline}/`)) throw Object.assign(new Error('Service Unavailable'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
      return get(key, options);
    };
    start({ evalSetTumorBinary: evalSet, s3OutageBudgetMs: 1500 });
    const job = await submit('training-outage-gate-budget', dataset, 1);
    await expect(job.waitUntilFinished(bed.events, 120_000)).rejects.toThrow('Service Unavailable');
    const failed = await jobOf(job.id!);
    expect(failed.attemptsMade).toBe(SHORT_RETRIES.attempts);
    expect(failed.attemptsStarted).toBeGreaterThan(SHORT_RETRIES.attempts);
    expect(failed.finishedOn! - failed.timestamp).toBeGreaterThanOrEqual(1500);
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([baseline]);
    // Failed for good: its checkpoint goes.
    expect(await stat(workspaceOf(job.id!)).catch(() => null)).toBeNull();
  }, 180_000);

  it('fails the training as before once the outage outlasts its budget', async () => {
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'set'), 16, 260);
    await env.s3.stop();
    try {
      start({ s3OutageBudgetMs: 500 });
      const job = await submit('training-outage-budget', { kind: 'local', path: dataset }, 1);
      await expect(job.waitUntilFinished(bed.events, 60_000)).rejects.toThrow(/ECONNREFUSED/);
      const failed = await jobOf(job.id!);
      expect(failed.attemptsMade).toBe(SHORT_RETRIES.attempts);
      expect(failed.attemptsStarted).toBeGreaterThan(SHORT_RETRIES.attempts);
      expect(outageOf(failed)).toBeUndefined();
    } finally {
      await env.s3.restart();
    }
  }, 120_000);
});
