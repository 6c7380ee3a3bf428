import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ModelRegistry,
  TRAINING_JOB_NAME,
  createLogger,
  createTrainingQueue,
  createWorkerConnection,
  enqueueTraining,
  requestTrainingCancellation,
  type Redis,
  type TrainingJob,
  type TrainingQueue,
} from '@btd/shared';
import { startTrainer, type Trainer } from '../services/trainer/src/trainer.js';
import { TrainingWorkspace } from '../services/trainer/src/training-workspace.js';
import { useApiHarness } from './api-harness.js';
import { REPO_ROOT, TEST_REDIS_URL, waitFor } from './helpers/index.js';
import type { TestClient } from './api-test-env.js';
import { makeArtifact } from './registry-fixtures.js';
import { TINY_TRAINING, linkDataset, trainerConfig, uploadDataset } from './trainer-fixtures.js';

const CLI = path.join(REPO_ROOT, 'services/trainer/bin/btd-trainer.js');
const logger = createLogger({ name: 'trainer-cancel-test', level: 'silent', pretty: false });

const harness = useApiHarness();
let workDir: string;
let connection: Redis;
let queue: TrainingQueue;
let trainer: Trainer | undefined;

beforeEach(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'btd-trainer-cancel-'));
  connection = createWorkerConnection(TEST_REDIS_URL);
  queue = createTrainingQueue(harness.env.redis, harness.env.prefix);
});

afterEach(async () => {
  await trainer?.close();
  trainer = undefined;
  await queue.close();
  connection.disconnect();
  await rm(workDir, { recursive: true, force: true });
});

/** Runs the built command line with the test API as its default address. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', BTD_API_URL: harness.env.url }, cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

async function call(client: TestClient, method: 'GET' | 'DELETE', id: string) {
  const response = await harness.env.api.app.inject({ method, url: `/v1/trainings/${id}`, headers: harness.env.auth(client) });
  return { status: response.statusCode, body: response.json<Record<string, unknown>>() };
}

/** Every page of GET /v1/trainings with `limit`, following `next`. */
async function listAll(limit: number) {
  const pages: { id: string; state: string }[][] = [];
  for (let query: string | undefined = `limit=${limit}`; query !== undefined; ) {
    const response: { statusCode: number; json<T>(): T } = await harness.env.api.app.inject({ method: 'GET', url: `/v1/trainings?${query}`, headers: harness.env.auth('alice') });
    expect(response.statusCode).toBe(200);
    const body: { items: { id: string; state: string }[]; next?: string } = response.json();
    pages.push(body.items.map(({ id, state }) => ({ id, state })));
    query = body.next;
  }
  return pages;
}

/** Waits for the training to end, and returns its job. */
const ended = (id: string) => waitFor(async () => ((await queue.getJob(id))?.finishedOn ? queue.getJob(id) : undefined), { timeoutMs: 120_000, intervalMs: 100, what: 'the trainer to stop' });

/** A logger at info level whose messages are kept, in order, in `messages`. */
function keptLogger() {
  const messages: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) messages.push((JSON.parse(line) as { msg: string }).msg);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), messages };
}

/** A training that runs for many epochs: early stopping ends it after 10 epochs without progress at the soonest, each of 200 images. */
const LONG_TRAINING = { ...TINY_TRAINING, epochs: 500, inputSize: 64, maxImages: 200 };

/** Queues a training on links to real slices in the trainer's dataset root, as the API does. */
async function queueTraining(requestId: string, hyperParameters: TrainingJob['hyperParameters'], perClass: number) {
  const folder = await linkDataset(path.join(workDir, 'datasets', requestId), perClass, 0);
  const job = await enqueueTraining(queue, requestId, { task: 'tumor-binary', dataset: { kind: 'local', path: folder }, hyperParameters, requestedBy: 'ops' });
  return job.id!;
}

/**
 * Holds every read of a file under `dir` (`readFile` of node:fs/promises, as the model package
 * reads images) until `release()`: `reached` settles at the first. `restore()` puts readFile back.
 */
function holdReadsUnder(dir: string) {
  const readFile = fs.promises.readFile;
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const held = async (...args: Parameters<typeof readFile>) => {
    if (typeof args[0] === 'string' && args[0].startsWith(`${dir}${path.sep}`)) {
      reach();
      await released;
    }
    return readFile(...args);
  };
  fs.promises.readFile = held as typeof readFile;
  // `import { readFile } from 'node:fs/promises'` sees the replacement.
  syncBuiltinESMExports();
  return {
    reached,
    release,
    restore() {
      release();
      fs.promises.readFile = readFile;
      syncBuiltinESMExports();
    },
  };
}

const exists = (file: string) => access(file).then(() => true, () => false);

describe('DELETE /v1/trainings/:id', () => {
  it('takes a queued or handed-back training off the queue at once, and answers the same when asked again', async () => {
    const id = await queueTraining('queued', TINY_TRAINING, 20);
    expect((await call('alice', 'DELETE', id)).status).toBe(403);

    const cancelled = await call('ops', 'DELETE', id);
    expect(cancelled).toMatchObject({ status: 200, body: { id, state: 'cancelled', cancelledBy: 'ops', request: { requestedBy: 'ops' } } });
    expect(await queue.getJobState(id)).toBe('unknown');
    expect(await call('alice', 'GET', id)).toMatchObject({ status: 200, body: { id, state: 'cancelled', cancelledBy: 'ops' } });
    expect(await call('ops', 'DELETE', id)).toEqual(cancelled);
    expect((await call('ops', 'DELETE', 'training-unknown')).status).toBe(404);

    // Handed back (at a shutdown, an S3 outage, or for a trainer that can read its folder): delayed, and taken off the queue alike.
    const request: TrainingJob = { task: 'tumor-binary', dataset: { kind: 's3', prefix: 'datasets/none/' }, hyperParameters: TINY_TRAINING, requestedBy: 'ops' };
    const handedBack = (await queue.add(TRAINING_JOB_NAME, request, { jobId: 'training-handed-back', delay: 60_000 })).id!;
    expect(await queue.getJobState(handedBack)).toBe('delayed');
    expect(await call('ops', 'DELETE', handedBack)).toMatchObject({ status: 200, body: { id: handedBack, state: 'cancelled' } });
    expect(await queue.getJobState(handedBack)).toBe('unknown');
    expect(await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed')).toEqual({ waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0 });
  });

  it('keeps a training taken off the queue in the list, as cancelled, in its place; the pages neither repeat nor skip one', async () => {
    const request: TrainingJob = { task: 'tumor-binary', dataset: { kind: 's3', prefix: 'datasets/none/' }, hyperParameters: TINY_TRAINING, requestedBy: 'ops' };
    const jobs = [];
    for (const name of ['a', 'b', 'c', 'd', 'e']) jobs.push(await enqueueTraining(queue, `listed-${name}`, request));
    // Newest first by creation, ties by id, as the list orders them.
    const order = jobs.sort((a, b) => b.timestamp - a.timestamp || (a.id! < b.id! ? 1 : -1)).map((job) => job.id!);
    const [first, second, , fourth] = order as [string, string, string, string];
    // The second page starts after the second training, the third after the fourth: both are taken off the queue.
    expect(await listAll(2)).toEqual([order.slice(0, 2), order.slice(2, 4), order.slice(4)].map((ids) => ids.map((id) => ({ id, state: 'waiting' }))));
    for (const id of [second, fourth]) expect(await call('ops', 'DELETE', id)).toMatchObject({ status: 200, body: { id, state: 'cancelled' } });
    expect(await queue.getJobState(second)).toBe('unknown');

    const stateOf = (id: string) => (id === second || id === fourth ? 'cancelled' : 'waiting');
    const pages = await listAll(2);
    expect(pages).toEqual([order.slice(0, 2), order.slice(2, 4), order.slice(4)].map((ids) => ids.map((id) => ({ id, state: stateOf(id) }))));
    const after = await harness.env.api.app.inject({ method: 'GET', url: `/v1/trainings?limit=1&after=${second}`, headers: harness.env.auth('alice') });
    expect(after.json<{ items: { id: string }[] }>().items.map((item) => item.id)).toEqual([order[2]]);

    const listed = await cli(['list', '--json', '--key', harness.env.keys.alice]);
    expect(listed.code, listed.stderr).toBe(0);
    const trainings = JSON.parse(listed.stdout) as { id: string; state: string; cancelledBy?: string }[];
    expect(trainings.map(({ id, state }) => ({ id, state }))).toEqual(order.map((id) => ({ id, state: stateOf(id) })));
    expect(trainings.find((training) => training.id === fourth)).toMatchObject({ cancelledBy: 'ops' });
    expect(first).toBe(order[0]);
  });

  it('stops a running training, which publishes nothing and leaves no workspace; the trainer takes the next; a finished one is refused', async () => {
    const { env } = harness;
    const registry = new ModelRegistry({ store: env.store, redis: env.redis, namespace: env.prefix });
    const id = await queueTraining('running', LONG_TRAINING, 100);
    trainer = startTrainer({ config: trainerConfig(env.prefix, workDir), connection, registry, store: env.store, logger });
    await waitFor(async () => ((await queue.getJob(id))?.progress as { phase?: string } | undefined)?.phase === 'training', {
      timeoutMs: 180_000,
      intervalMs: 100,
      what: 'the first epoch',
    });
    const workspace = new TrainingWorkspace(workDir, id);
    expect(await exists(workspace.checkpointDir)).toBe(true);

    const asked = await cli(['cancel', id, '--key', env.keys.ops]);
    expect(asked.code, asked.stderr).toBe(0);
    expect(JSON.parse(asked.stdout)).toMatchObject({ id, state: 'cancelling', cancelledBy: 'ops' });

    const ended = await waitFor(async () => ((await queue.getJob(id))?.finishedOn ? queue.getJob(id) : undefined), { timeoutMs: 120_000, intervalMs: 100, what: 'the trainer to stop' });
    expect(await ended!.getState()).toBe('failed');
    expect(ended!.failedReason).toBe('cancelled by ops');
    expect(ended!.attemptsMade).toBe(1);
    expect(await call('alice', 'GET', id)).toMatchObject({ status: 200, body: { id, state: 'cancelled', cancelledBy: 'ops', failedReason: 'cancelled by ops' } });
    expect(await call('ops', 'DELETE', id)).toMatchObject({ status: 200, body: { id, state: 'cancelled' } });
    expect(await registry.listVersionIds('tumor-binary')).toEqual([]);
    expect(await exists(workspace.root)).toBe(false);

    const next = await queueTraining('next', { ...TINY_TRAINING, epochs: 1 }, 20);
    await waitFor(async () => ((await queue.getJob(next))?.finishedOn ? true : undefined), { timeoutMs: 180_000, intervalMs: 100, what: 'the next training' });
    expect(await queue.getJobState(next)).toBe('completed');
    expect(await registry.listVersionIds('tumor-binary')).toHaveLength(1);

    const finished = await call('ops', 'DELETE', next);
    expect(finished).toMatchObject({ status: 409, body: { code: 'training_finished' } });
    expect(finished.body.message).toContain(`training ${next} is already completed`);
    expect(await call('ops', 'DELETE', next)).toEqual(finished);
  }, 420_000);

  it('stops a dataset download under way: the rest of the files are never fetched, nothing is published, no workspace is left', async () => {
    const { env } = harness;
    const registry = new ModelRegistry({ store: env.store, redis: env.redis, namespace: env.prefix });
    const prefix = `datasets/${path.basename(workDir)}/`;
    await uploadDataset(env.store, prefix, 20, 0);
    const id = (await enqueueTraining(queue, 'downloading', { task: 'tumor-binary', dataset: { kind: 's3', prefix }, hyperParameters: TINY_TRAINING, requestedBy: 'ops' })).id!;
    // From the tenth file on, each downloads until the download is cancelled, as slow ones would: the training is cancelled during its download.
    const requested: string[] = [];
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const store = Object.create(env.store) as typeof env.store;
    store.get = async (key, options = {}) => {
      if (!key.startsWith(prefix)) return env.store.get(key, options);
      requested.push(key);
      if (requested.length < 10) return env.store.get(key, options);
      held();
      return new Promise((_resolve, reject) => options.signal?.addEventListener('abort', () => reject(options.signal?.reason as Error), { once: true }));
    };
    trainer = startTrainer({ config: trainerConfig(env.prefix, workDir), connection, registry, store, logger });
    await holding;
    expect(await call('ops', 'DELETE', id)).toMatchObject({ status: 202, body: { id, state: 'cancelling' } });

    const job = await ended(id);
    expect(job!.failedReason).toBe('cancelled by ops');
    expect(await call('alice', 'GET', id)).toMatchObject({ status: 200, body: { id, state: 'cancelled', cancelledBy: 'ops' } });
    expect(requested.length).toBeLessThan(40);
    const mirrored = (await readdir(path.join(workDir, 'datasets', 's3'), { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile() && entry.name.endsWith('.jpg'));
    expect(mirrored.length).toBeLessThan(40);
    expect(await registry.listVersionIds('tumor-binary')).toEqual([]);
    expect(await exists(new TrainingWorkspace(workDir, id).root)).toBe(false);
    await env.store.deletePrefix(prefix);
  }, 180_000);

  it('stops the promotion gate\'s evaluation under way: no model is evaluated to the end, nothing is published, no workspace is left', async () => {
    const { env } = harness;
    const registry = new ModelRegistry({ store: env.store, redis: env.redis, namespace: env.prefix });
    const evaluationSet = await linkDataset(path.join(workDir, 'evaluation'), 50, 100);
    const id = await queueTraining('evaluating', { ...TINY_TRAINING, epochs: 1 }, 20);
    const kept = keptLogger();
    // The evaluation reads its first images, then waits until the trainer has seen the cancellation: it is cancelled within the evaluation, however fast it runs.
    const reads = holdReadsUnder(evaluationSet);
    try {
      trainer = startTrainer({ config: trainerConfig(env.prefix, workDir, { evalSetTumorBinary: evaluationSet, evalMaxImages: 100 }), connection, registry, store: env.store, logger: kept.logger });
      await reads.reached;
      expect(await call('ops', 'DELETE', id)).toMatchObject({ status: 202, body: { id, state: 'cancelling' } });
      await waitFor(() => kept.messages.includes('training cancelled; stopping it'), { timeoutMs: 30_000, what: 'the trainer to see the cancellation' });
      reads.release();

      const job = await ended(id);
      expect(job!.failedReason).toBe('cancelled by ops');
      expect(kept.messages).not.toContain('model evaluated on the evaluation set');
    } finally {
      reads.restore();
    }
    expect(await call('alice', 'GET', id)).toMatchObject({ status: 200, body: { id, state: 'cancelled' } });
    expect(await registry.listVersionIds('tumor-binary')).toEqual([]);
    expect(await exists(new TrainingWorkspace(workDir, id).root)).toBe(false);
  }, 300_000);

  it('is refused once a handed-back training has begun publishing, and a cancellation asked before does not stop the publishing its trainer finishes', async () => {
    const { env } = harness;
    const registry = new ModelRegistry({ store: env.store, redis: env.redis, namespace: env.prefix });
    // What a try that met S3 down while publishing leaves: its version published, its outcome not
    // recorded, the job handed back in its publishing phase until S3 answers.
    const request: TrainingJob = { task: 'tumor-binary', dataset: { kind: 's3', prefix: 'datasets/none/' }, hyperParameters: TINY_TRAINING, requestedBy: 'ops' };
    const job = await queue.add(TRAINING_JOB_NAME, request, { jobId: 'training-begun-publishing', delay: 60_000 });
    await job.updateProgress({ phase: 'publishing' });
    const gate = { decision: { promote: false, reasons: ['kept back by the gate'] } };
    const artifact = await makeArtifact(workDir, 'tumor-binary');
    const { version } = await registry.publishDirectory('tumor-binary', artifact, { source: { kind: 'training', jobId: job.id }, gate, reasons: gate.decision.reasons });

    expect(await call('ops', 'DELETE', job.id!)).toMatchObject({ status: 409, body: { code: 'training_publishing' } });
    expect(await queue.getJobState(job.id!)).toBe('delayed');
    expect((await call('alice', 'GET', job.id!)).body).not.toHaveProperty('cancelledBy');

    // One asked for while it still ran (the trainer had not reached publishing then) is found by its trainer all the same.
    await requestTrainingCancellation(env.redis, env.prefix, job.id!, 'ops');
    await job.promote();
    trainer = startTrainer({ config: trainerConfig(env.prefix, workDir), connection, registry, store: env.store, logger });
    const ended = await waitFor(async () => ((await queue.getJob(job.id!))?.finishedOn ? queue.getJob(job.id!) : undefined), { timeoutMs: 60_000, intervalMs: 100, what: 'the trainer to finish' });
    expect(await ended!.getState()).toBe('completed');
    expect(ended!.returnvalue).toMatchObject({ version, promoted: false, reasons: ['kept back by the gate'] });
    expect(await registry.listVersionIds('tumor-binary')).toEqual([version]);
  }, 120_000);
});
