import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRAINING_JOB_NAME, type DatasetWait, type TrainingJob } from '@btd/shared';
import type { Trainer } from '../services/trainer/src/trainer.js';
import { useRegistryEnv } from './registry-fixtures.js';
import { waitFor } from './helpers/index.js';
import { TINY_TRAINING, useTrainerTestBed } from './trainer-fixtures.js';

const env = useRegistryEnv();
const bed = useTrainerTestBed(env);

/** The wait an earlier trainer left in the training's progress when it handed it back: no running trainer could read its folder. */
const earlierWait = (): DatasetWait => ({
  since: Date.now() - 60_000,
  refusedBy: [{ trainer: 'host-b-1-ab', reason: 'dataset folder does not exist' }],
  waitingFor: [],
  unreadableSince: Date.now() - 30_000,
});

/** Enqueues a tiny training on the local `folder`, as handed back by another trainer with `wait`. */
async function handedBack(id: string, folder: string, wait: DatasetWait) {
  const request: TrainingJob = { task: 'tumor-binary', dataset: { kind: 'local', path: folder }, hyperParameters: { ...TINY_TRAINING, epochs: 1 }, requestedBy: 'ops' };
  const job = await bed.queue.add(TRAINING_JOB_NAME, request, { jobId: id, attempts: 1 });
  await job.updateProgress({ phase: 'preparing', datasetWait: wait });
  return job;
}

async function jobOf(jobId: string) {
  const job = await bed.queue.getJob(jobId);
  if (!job) throw new Error(`job ${jobId} is gone`);
  return job;
}

describe('a training waiting for a trainer that can read its dataset folder', () => {
  it('keeps its wait when the trainer that took it shuts down as it would hand it back, for the next to go on with', async () => {
    const wait = earlierWait();
    const job = await handedBack('training-wait-shutdown', '/nonexistent-btd-datasets/x', wait);
    let closing: Promise<void> | undefined;
    // The trainer stops while it looks for another that could read the folder; its own wait is over (0 ms).
    const readers = {
      trainer: 'host-a-2-cd',
      live: () => {
        closing = trainer.close();
        return Promise.resolve([]);
      },
      waitMs: 0,
    };
    // Taken only once the trainer runs, after this line.
    const trainer: Trainer = bed.start({}, readers);
    await waitFor(() => closing !== undefined, { timeoutMs: 60_000, intervalMs: 50, what: 'the trainer to take the training' });
    await closing;
    const after = await jobOf(job.id!);
    expect([await after.getState(), after.attemptsMade, after.failedReason]).toEqual(['delayed', 0, undefined]);
    expect(after.progress).toEqual({ phase: 'preparing', datasetWait: wait });
  });

  it('forgets its wait once a trainer reads the folder', async () => {
    const folder = path.join(env.dir, 'trainer', 'empty-set');
    await mkdir(folder, { recursive: true });
    const job = await handedBack('training-wait-read', folder, earlierWait());
    bed.start({}, { trainer: 'host-a-2-cd', live: () => Promise.resolve([]), waitMs: 0 });
    // An empty folder is read, then refused by the training itself.
    await waitFor(async () => (await jobOf(job.id!)).finishedOn !== undefined, { timeoutMs: 120_000, intervalMs: 100, what: 'the training to end' });
    const after = await jobOf(job.id!);
    expect(await after.getState()).toBe('failed');
    expect(after.progress).not.toHaveProperty('datasetWait');
  });
});
