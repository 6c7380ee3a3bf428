import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { TRAINING_JOB_NAME, enqueueTraining, type TrainingJob, type TrainingProgress, type TrainingResult } from '@btd/shared';
import type { Trainer } from '../services/trainer/src/trainer.js';
import { promoteConstantBaseline, useRegistryEnv } from './registry-fixtures.js';
import { waitFor } from './helpers/index.js';
import { TINY_TRAINING, linkDataset, uploadDataset, useTrainerTestBed } from './trainer-fixtures.js';

const env = useRegistryEnv();
const bed = useTrainerTestBed(env);
const { progress, start } = bed;

/** Publishes and promotes a baseline that calls every image no_tumor: on a tumour-only evaluation set any candidate is at least as good. */
const promoteNoTumorBaseline = (): Promise<string> => promoteConstantBaseline(env, 'no_tumor');

/** An evaluation set of tumour slices only (links to real ones). */
const tumourOnlyEvalSet = (count: number) => linkDataset(path.join(env.dir, 'trainer', 'eval'), { yes: count, no: 0 }, 300);

/** A request for one epoch of tiny training on the given dataset. */
const oneEpochOn = (dataset: TrainingJob['dataset']): TrainingJob => ({ task: 'tumor-binary', dataset, hyperParameters: { ...TINY_TRAINING, epochs: 1 }, requestedBy: 'ops' });

/** Makes every read of a key under `prefix` take `ms` longer; the function returned counts them. */
function slowReadsUnder(prefix: string, ms: number): () => number {
  const get = env.store.get.bind(env.store);
  let reads = 0;
  env.store.get = async (key: string, options?: Parameters<typeof get>[1]) => {
    if (key.startsWith(prefix)) {
      reads += 1;
      await sleep(ms);
    }
    return get(key, options);
  };
  return () => reads;
}

/** The job once its first attempt has ended, as the queue holds it then. */
function afterFirstAttempt(jobId: string, options: Parameters<typeof waitFor>[1]) {
  return waitFor(async () => {
    const current = await bed.queue.getJob(jobId);
    return current && current.attemptsMade >= 1 ? current : undefined;
  }, options);
}

/**
 * Once `underWay` holds, closes the trainer (what SIGTERM does) and checks that the job, in `phase`,
 * went back to the queue unlocked and without spending an attempt.
 */
async function expectHandedBackWhenClosedDuring(phase: TrainingProgress['phase'], running: Trainer, jobId: string, underWay: () => boolean): Promise<void> {
  await waitFor(underWay, { timeoutMs: 180_000, intervalMs: 50, what: `the ${phase} phase to be under way` });
  expect((await bed.queue.getJob(jobId))?.progress).toMatchObject({ phase });
  await running.close();
  const after = (await bed.queue.getJob(jobId))!;
  expect(['delayed', 'waiting']).toContain(await after.getState());
  expect(after.attemptsMade).toBe(0);
  expect(await env.redis.exists(`${env.prefix}:training:${jobId}:lock`)).toBe(0);
}

describe('the trainer', () => {
  it('trains on an S3 dataset with progress per epoch, then publishes and promotes a candidate that passes the gate', async () => {
    const baseline = await promoteNoTumorBaseline();
    await uploadDataset(env.store, 'datasets/tiny/', 20, 0);
    // Tumour images only: the baseline misses all of them, so any candidate is at least as good and
    // the outcome does not hang on how well two epochs of a tiny model happen to do.
    const evalSet = await tumourOnlyEvalSet(10);
    start({ evalSetTumorBinary: evalSet });

    const hyperParameters = { ...TINY_TRAINING, testTimeRotations: [-5, 5], testTimeRotationsBelow: 0.9 };
    const request = { task: 'tumor-binary', dataset: { kind: 's3', prefix: 'datasets/tiny/' }, hyperParameters, requestedBy: 'ops' } as const;
    const job = await enqueueTraining(bed.queue, 'req-1', request);
    const result = (await job.waitUntilFinished(bed.events, 180_000)) as TrainingResult;

    const epochs = (progress.get(job.id!) ?? []).filter((p) => p.phase === 'training');
    expect(epochs.map((p) => p.epoch)).toEqual([1, 2]);
    expect(epochs[1]).toMatchObject({ epochs: 2, loss: expect.any(Number), accuracy: expect.any(Number), valLoss: expect.any(Number), valAccuracy: expect.any(Number) });
    expect(progress.get(job.id!)?.at(-1)?.phase).toBe('done');

    expect(result).toMatchObject({ task: 'tumor-binary', promoted: true, reasons: [] });
    expect(await env.registry.promoted('tumor-binary')).toMatchObject({ version: result.version, previousVersion: baseline, by: 'trainer for ops' });
    const manifest = await env.registry.readManifest('tumor-binary', result.version);
    expect(manifest.evaluation).toMatchObject({ set: evalSet, baseline: { version: baseline }, decision: { promote: true } });
    expect((manifest.training as { epochsRun: number }).epochsRun).toBe(2);
    expect(manifest).toMatchObject({ testTimeRotations: [-5, 5], testTimeRotationsBelow: 0.9 });
    const [listed] = await env.registry.listVersions('tumor-binary');
    expect(listed).toMatchObject({ version: result.version, state: 'promoted', source: { kind: 'training', jobId: job.id, dataset: 's3://datasets/tiny/' } });

    // The same request again is the same job; a redelivered job returns its recorded outcome without training.
    expect((await enqueueTraining(bed.queue, 'req-1', request)).id).toBe(job.id);
    await (await bed.queue.getJob(job.id!))!.remove();
    const again = await enqueueTraining(bed.queue, 'req-1', request);
    expect(await again.waitUntilFinished(bed.events, 30_000)).toEqual(result);
    expect(await env.registry.listVersionIds('tumor-binary')).toHaveLength(2);
  }, 300_000);

  it('keeps a candidate back, with the reason, when the gate cannot pass it', async () => {
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'local-set'), 16, 40);
    start();
    const job = await enqueueTraining(bed.queue, 'req-2', {
      task: 'tumor-binary',
      dataset: { kind: 'local', path: dataset },
      hyperParameters: { ...TINY_TRAINING, epochs: 1 },
      requestedBy: 'ops',
    });
    const result = (await job.waitUntilFinished(bed.events, 180_000)) as TrainingResult;

    expect(result).toMatchObject({ promoted: false, reasons: ['no evaluation set is configured for tumor-binary'] });
    expect(await env.registry.promoted('tumor-binary')).toBeNull();
    expect(await env.registry.status('tumor-binary', result.version)).toMatchObject({
      state: 'candidate',
      reasons: ['no evaluation set is configured for tumor-binary'],
    });
  }, 300_000);

  it('finishes the version it published when recording the outcome failed, instead of publishing and promoting a second one', async () => {
    const baseline = await promoteNoTumorBaseline();
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'set'), 16, 120);
    const evalSet = await tumourOnlyEvalSet(8);
    // The outcome cannot be written once (S3 answers 503), after the candidate was published and promoted.
    const record = env.registry.recordTraining.bind(env.registry);
    let rejected = 0;
    env.registry.recordTraining = async (...args: Parameters<typeof record>) => {
      if (rejected++ === 0) throw new Error('S3 503 SlowDown');
      return record(...args);
    };
    start({ evalSetTumorBinary: evalSet });
    const request = oneEpochOn({ kind: 'local', path: dataset });
    const job = await enqueueTraining(bed.queue, 'req-retried', request);
    await afterFirstAttempt(job.id!, { timeoutMs: 180_000, intervalMs: 200, what: 'the first attempt to fail' });
    expect(await job.getState()).toBe('delayed');
    expect(await env.registry.listVersionIds('tumor-binary')).toHaveLength(2);
    // Retry now rather than after the backoff.
    await (await bed.queue.getJob(job.id!))!.promote();
    const result = (await job.waitUntilFinished(bed.events, 180_000)) as TrainingResult;

    expect(rejected).toBe(2);
    expect(result).toMatchObject({ promoted: true, reasons: [] });
    expect((await env.registry.listVersionIds('tumor-binary')).sort()).toEqual([baseline, result.version].sort());
    const history = await env.registry.history('tumor-binary');
    expect(history.map((r) => r.version)).toEqual([result.version, baseline]);
    expect(await env.registry.promoted('tumor-binary')).toMatchObject({ version: result.version, previousVersion: baseline, sequence: 2 });
    expect(await env.registry.readTraining('tumor-binary', job.id!)).toEqual(result);
  }, 300_000);

  it('retries from its checkpoint, naming the setting, when the evaluation set cannot be read at the gate', async () => {
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'set'), 16, 140);
    const evalSet = path.join(env.dir, 'trainer', 'eval');
    start({ evalSetTumorBinary: evalSet });
    const request = oneEpochOn({ kind: 'local', path: dataset });
    const job = await enqueueTraining(bed.queue, 'req-eval-set', request);
    const failed = await afterFirstAttempt(job.id!, { timeoutMs: 180_000, intervalMs: 200, what: 'the first attempt to fail' });
    expect(failed.failedReason).toBe(`the evaluation set configured in EVAL_SET_TUMOR_BINARY cannot be used: dataset folder ${evalSet} does not exist`);
    expect(await failed.getState()).toBe('delayed');
    const checkpoint = path.join(env.dir, 'trainer', 'jobs', job.id!, 'checkpoint');
    expect((await readdir(checkpoint)).length).toBeGreaterThan(0);

    // The operator fixes the set; the retry goes on from the checkpoint instead of training again.
    await linkDataset(evalSet, { yes: 8, no: 0 }, 300);
    await failed.promote();
    const result = (await job.waitUntilFinished(bed.events, 180_000)) as TrainingResult;
    expect(result).toMatchObject({ promoted: true });
    expect((progress.get(job.id!) ?? []).filter((p) => p.phase === 'training').map((p) => p.epoch)).toEqual([1]);
    expect(await stat(path.join(env.dir, 'trainer', 'jobs', job.id!)).catch(() => null)).toBeNull();
  }, 300_000);

  it('removes the checkpoint and output of a training that fails for the last time', async () => {
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'set'), 16, 140);
    start({ evalSetTumorBinary: path.join(env.dir, 'trainer', 'no-such-eval-set') });
    const request = oneEpochOn({ kind: 'local', path: dataset });
    const job = await bed.queue.add(TRAINING_JOB_NAME, request, { jobId: 'training-last-attempt', attempts: 1 });
    await expect(job.waitUntilFinished(bed.events, 180_000)).rejects.toThrow(/EVAL_SET_TUMOR_BINARY/);
    expect((progress.get(job.id!) ?? []).some((p) => p.phase === 'evaluating')).toBe(true);
    expect(await stat(path.join(env.dir, 'trainer', 'jobs', job.id!)).catch(() => null)).toBeNull();
  }, 300_000);

  it('hands the job back to the queue, without spending an attempt, when shut down while mirroring its dataset', async () => {
    await uploadDataset(env.store, 'datasets/large/', 16, 0);
    // A large dataset: every download takes a second, 32 of them take four rounds of 8.
    const downloads = slowReadsUnder('datasets/large/', 1000);
    // Closing waits for running trainings for half the shutdown limit: 2 s.
    const trainer = start({ shutdownTimeoutMs: 4000 });
    const request = oneEpochOn({ kind: 's3', prefix: 'datasets/large/' });
    const job = await enqueueTraining(bed.queue, 'req-shutdown-preparing', request);
    await expectHandedBackWhenClosedDuring('preparing', trainer, job.id!, () => downloads() > 0);
    expect(downloads()).toBeLessThan(32);
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([]);
  }, 120_000);

  it('hands the job back to the queue, publishing nothing, when shut down during the gate', async () => {
    const baseline = await promoteNoTumorBaseline();
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'set'), 16, 160);
    const evalSet = await tumourOnlyEvalSet(8);
    // Reading the promoted model for the comparison is slow.
    const baselineReads = slowReadsUnder(`models/tumor-binary/${baseline}/`, 2000);
    const trainer = start({ evalSetTumorBinary: evalSet });
    const request = oneEpochOn({ kind: 'local', path: dataset });
    const job = await enqueueTraining(bed.queue, 'req-shutdown-evaluating', request);
    await expectHandedBackWhenClosedDuring('evaluating', trainer, job.id!, () => baselineReads() > 0);
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([baseline]);
    expect((await env.registry.promoted('tumor-binary'))?.version).toBe(baseline);
  }, 300_000);

  it('fails a request with hyper-parameters training refuses at once, without retries', async () => {
    start();
    const dataset = path.join(env.dir, 'trainer', 'set');
    await mkdir(path.join(dataset, 'yes'), { recursive: true });
    // Sent past the API, whose check refuses it: a threshold for test-time rotations without rotations.
    const request: TrainingJob = { task: 'tumor-binary', dataset: { kind: 'local', path: dataset }, hyperParameters: { epochs: 1, testTimeRotationsBelow: 0.9 }, requestedBy: 'ops' };
    const job = await enqueueTraining(bed.queue, 'req-options', request);
    const failed = await afterFirstAttempt(job.id!, { timeoutMs: 30_000, intervalMs: 100, what: 'the first attempt to end' });
    expect(await failed.getState()).toBe('failed');
    expect([failed.attemptsMade, failed.failedReason]).toEqual([1, 'a threshold for test-time rotations needs rotations (--test-time-rotations)']);
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([]);
  });

  it('fails a request for a folder outside the allowed roots at once, without retries', async () => {
    start();
    const job = await enqueueTraining(bed.queue, 'req-3', { task: 'tumor-binary', dataset: { kind: 'local', path: '/etc' }, requestedBy: 'ops' });
    await expect(job.waitUntilFinished(bed.events, 30_000)).rejects.toThrow(/outside the allowed roots/);
    const failed = await bed.queue.getJob(job.id!);
    expect(failed?.attemptsMade).toBe(1);
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([]);
  });
});
