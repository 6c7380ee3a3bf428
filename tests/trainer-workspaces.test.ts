import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker, type JobsOptions } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TRAINING_JOB_NAME, TRAINING_QUEUE, createWorkerConnection, enqueueTraining, trainingJobId, type Redis, type TrainingJob, type TrainingJobHandle, type TrainingResult } from '@btd/shared';
import { removeWorkspaceIfFinished } from '../services/trainer/src/finished-workspaces.js';
import { TrainingWorkspace } from '../services/trainer/src/training-workspace.js';
import { TEST_REDIS_URL, waitFor } from './helpers/index.js';
import { useRegistryEnv } from './registry-fixtures.js';
import { TINY_TRAINING, useTrainerTestBed } from './trainer-fixtures.js';

const env = useRegistryEnv();
const bed = useTrainerTestBed(env);

/** Takes jobs off the queue as a trainer does, holding their locks, without running them. */
let taker: Worker<TrainingJob, TrainingResult>;
let takerConnection: Redis;

beforeEach(() => {
  takerConnection = createWorkerConnection(TEST_REDIS_URL);
  taker = new Worker<TrainingJob, TrainingResult>(TRAINING_QUEUE, null, { connection: takerConnection, prefix: env.prefix, autorun: false, lockDuration: 300_000 });
});

afterEach(async () => {
  await taker.close();
  takerConnection.disconnect();
});

const workDir = () => path.join(env.dir, 'trainer');
const request = (name: string): TrainingJob => ({ task: 'tumor-binary', dataset: { kind: 'local', path: path.join(workDir(), name) }, hyperParameters: TINY_TRAINING, requestedBy: 'ops' });

/** Enqueues a training as the API does, with other job options if given. */
const enqueue = (name: string, opts: JobsOptions = {}): Promise<TrainingJobHandle> =>
  Object.keys(opts).length === 0 ? enqueueTraining(bed.queue, name, request(name)) : bed.queue.add(TRAINING_JOB_NAME, request(name), { jobId: trainingJobId(name), ...opts });

/** Takes the next job, which must be `id`, as a trainer that runs it; answers the job and the lock's token. */
async function take(id: string | undefined): Promise<{ job: TrainingJobHandle; token: string }> {
  const token = randomUUID();
  const job = await taker.getNextJob(token, { block: false });
  expect(job?.id).toBe(id);
  return { job: job!, token };
}

/** Enqueues a training and takes it at once. */
const enqueueAndTake = async (name: string, opts: JobsOptions = {}) => take((await enqueue(name, opts)).id);

/** The workspace an earlier run of the job left: a checkpoint and an output. */
async function leaveWorkspace(jobId: string): Promise<TrainingWorkspace> {
  const workspace = new TrainingWorkspace(workDir(), jobId);
  await mkdir(workspace.checkpointDir, { recursive: true });
  await mkdir(workspace.outDir, { recursive: true });
  await writeFile(path.join(workspace.checkpointDir, 'state.json'), JSON.stringify({ epoch: 3 }));
  await writeFile(path.join(workspace.checkpointDir, 'latest.weights'), Buffer.alloc(64));
  return workspace;
}

describe('a trainer that starts', () => {
  it('removes the workspaces of trainings finished or no longer queued, and keeps those a trainer may resume', async () => {
    const completed = await enqueueAndTake('completed');
    await completed.job.moveToCompleted({} as TrainingResult, completed.token, false);
    const failed = await enqueueAndTake('failed', { attempts: 1 });
    await failed.job.moveToFailed(new Error('out of memory'), failed.token, false);
    const active = await enqueueAndTake('active');
    // Cancelled while handed back: the API takes it off the queue, and no trainer runs it again.
    const cancelled = await enqueue('cancelled', { delay: 3_600_000 });
    await cancelled.remove();
    // Paused, so that the trainer takes none of them while the test looks.
    await bed.queue.pause();
    const waiting = await enqueue('waiting');
    const prioritized = await enqueue('prioritized', { priority: 5 });
    const delayed = await enqueue('delayed', { delay: 3_600_000 });
    expect(await Promise.all([waiting, prioritized, delayed, active.job].map((job) => job.getState()))).toEqual(['waiting', 'prioritized', 'delayed', 'active']);

    const kept = await Promise.all([waiting, prioritized, delayed, active.job].map((job) => leaveWorkspace(job.id!)));
    const removed = await Promise.all([completed.job, failed.job, cancelled].map((job) => leaveWorkspace(job.id!)));
    // One of a job removed long ago, under an id the queue never held.
    removed.push(await leaveWorkspace('training-gone-long-ago'));

    await bed.start().swept;
    expect(removed.filter((workspace) => existsSync(workspace.root))).toEqual([]);
    expect(kept.filter((workspace) => !existsSync(path.join(workspace.checkpointDir, 'state.json')))).toEqual([]);
  });
});

describe('a training that fails for good without its processor running', () => {
  it('has its workspace removed when BullMQ fails it for stalling too often', async () => {
    // As a trainer killed while running it leaves it, for the third time: active, its lock lapsed.
    const { job } = await enqueueAndTake('stalled');
    await taker.close();
    await env.redis.del(`${env.prefix}:${TRAINING_QUEUE}:${job.id!}:lock`);
    await env.redis.hset(`${env.prefix}:${TRAINING_QUEUE}:${job.id!}`, 'stc', 3);
    const workspace = await leaveWorkspace(job.id!);

    // Short locks, so that the stall check runs every second.
    await bed.start({ lockDurationMs: 1000 }).swept;
    // Still active when the trainer started: the sweep leaves it.
    expect(existsSync(workspace.checkpointDir)).toBe(true);
    const failed = await waitFor(async () => ((await bed.queue.getJobState(job.id!)) === 'failed' ? bed.queue.getJob(job.id!) : undefined), {
      timeoutMs: 30_000,
      what: 'the stalled training to fail',
    });
    expect(failed.failedReason).toBe('job stalled more than allowable limit');
    await waitFor(() => !existsSync(workspace.root), { timeoutMs: 10_000, what: 'the workspace to be removed' });
  });

  it('keeps the workspace of a failure retried, and removes it once no attempt is left', async () => {
    const first = await enqueueAndTake('retried', { attempts: 2 });
    const workspace = await leaveWorkspace(first.job.id!);
    await first.job.moveToFailed(new Error('S3 timed out'), first.token, false);
    expect(await first.job.getState()).toBe('delayed');
    expect(await removeWorkspaceIfFinished(first.job, workDir())).toBe(false);
    expect(existsSync(workspace.checkpointDir)).toBe(true);

    // Its backoff over, it is taken again and fails again.
    await first.job.promote();
    const last = await take(first.job.id);
    await last.job.moveToFailed(new Error('S3 timed out'), last.token, false);
    expect(await last.job.getState()).toBe('failed');
    expect(await removeWorkspaceIfFinished(last.job, workDir())).toBe(true);
    expect(existsSync(workspace.root)).toBe(false);
  });
});
