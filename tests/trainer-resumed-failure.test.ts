import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRAINING_JOB_NAME, trainingJobId, type TrainingJob, type TrainingJobHandle } from '@btd/shared';
import { TrainingWorkspace } from '../services/trainer/src/training-workspace.js';
import { waitFor } from './helpers/index.js';
import { useRegistryEnv } from './registry-fixtures.js';
import { TINY_TRAINING, linkDataset, useTrainerTestBed } from './trainer-fixtures.js';

const env = useRegistryEnv();
const bed = useTrainerTestBed(env);

const workDir = () => path.join(env.dir, 'trainer');

/** A tiny training with a short backoff between its attempts, so that a test sees its retry. */
async function enqueue(name: string, epochs: number): Promise<TrainingJobHandle> {
  const dataset = await linkDataset(path.join(workDir(), name), 20, 0);
  const request: TrainingJob = { task: 'tumor-binary', dataset: { kind: 'local', path: dataset }, hyperParameters: { ...TINY_TRAINING, epochs }, requestedBy: 'ops' };
  return bed.queue.add(TRAINING_JOB_NAME, request, { jobId: trainingJobId(name), attempts: 3, backoff: { type: 'fixed', delay: 1500 } });
}

const checkpointEpoch = async (workspace: TrainingWorkspace): Promise<number | undefined> =>
  existsSync(path.join(workspace.checkpointDir, 'state.json'))
    ? (JSON.parse(await readFile(path.join(workspace.checkpointDir, 'state.json'), 'utf8')) as { epoch: number }).epoch
    : undefined;

/** Waits until the job has failed `count` attempts; answers the job as it is then. */
const failedAttempts = (job: TrainingJobHandle, count: number) =>
  waitFor(async () => {
    const now = await bed.queue.getJob(job.id!);
    return now && now.attemptsMade >= count ? now : undefined;
  }, { timeoutMs: 120_000, intervalMs: 20, what: `attempt ${count} to fail` });

/** Progress the job reported with `resumedFromEpoch`, if any. */
const resumedFrom = (job: TrainingJobHandle) => bed.progress.get(job.id!)?.find((p) => p.resumedFromEpoch !== undefined)?.resumedFromEpoch;

describe('a resumed training that fails after resuming', () => {
  it('keeps its checkpoint, and its retry resumes from the last epoch', async () => {
    const epochs = 8;
    const job = await enqueue('resumed-then-failed', epochs);
    const workspace = new TrainingWorkspace(workDir(), job.id!);
    // Stopped once an epoch is done: handed back, its checkpoint kept.
    const first = bed.start();
    await waitFor(() => bed.progress.get(job.id!)?.some((p) => (p.epoch ?? 0) >= 1), { timeoutMs: 120_000, intervalMs: 20, what: 'the first epoch' });
    await first.close();
    const stoppedAfter = (await checkpointEpoch(workspace))!;
    expect(stoppedAfter).toBeGreaterThanOrEqual(1);
    expect(stoppedAfter).toBeLessThan(epochs);

    // The resumed run's first checkpoint cannot be written: it fails after its resume succeeded.
    const blocker = path.join(workspace.checkpointDir, 'latest.weights.tmp');
    await mkdir(blocker);
    bed.start();
    const failed = await failedAttempts(job, 1);
    expect(failed.failedReason).toMatch(/EISDIR/);
    expect(await checkpointEpoch(workspace)).toBe(stoppedAfter);

    // The cause gone, the retry resumes where the run stopped instead of starting over.
    await rm(blocker, { recursive: true });
    const resumed = await waitFor(() => resumedFrom(job), { timeoutMs: 120_000, intervalMs: 20, what: 'the retry to report a resumed epoch' });
    expect(resumed).toBe(stoppedAfter);
    expect((await bed.queue.getJob(job.id!))!.attemptsMade).toBe(1);
  }, 300_000);
});

describe('a training whose checkpoint cannot be resumed', () => {
  it('drops the checkpoint, and its retry starts over', async () => {
    const job = await enqueue('unusable-checkpoint', 2);
    const workspace = new TrainingWorkspace(workDir(), job.id!);
    // Made with other settings (as by a release that recorded them otherwise): refused by every retry alike.
    await mkdir(workspace.checkpointDir, { recursive: true });
    await writeFile(path.join(workspace.checkpointDir, 'state.json'), JSON.stringify({ epoch: 1, settings: { inputSize: 64 } }));
    bed.start();
    const failed = await failedAttempts(job, 1);
    expect(failed.failedReason).toMatch(/made with other settings/);
    await waitFor(() => bed.progress.get(job.id!)?.some((p) => p.epoch === 1), { timeoutMs: 120_000, intervalMs: 20, what: 'the retry to finish an epoch' });
    expect(resumedFrom(job)).toBeUndefined();
  }, 300_000);
});
