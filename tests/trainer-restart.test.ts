import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTrainingQueue, enqueueTraining, type TrainingProgress, type TrainingQueue, type TrainingResult } from '@btd/shared';
import { waitFor } from './helpers/index.js';
import { useRegistryEnv } from './registry-fixtures.js';
import { TINY_TRAINING, linkDataset, spawnTrainer, type TrainerProcess } from './trainer-fixtures.js';

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

function start(): TrainerProcess {
  const workDir = path.join(env.dir, 'trainer');
  const trainer = spawnTrainer({
    ...env.serviceEnv,
    TRAINER_WORK_DIR: workDir,
    TRAINER_DATASET_ROOTS: workDir,
    MODELS_DIR: path.join(env.dir, 'no-bundled-models'),
    // Short locks, so a killed trainer's job is retaken within seconds.
    TRAINER_LOCK_MS: '3000',
  });
  children.push(trainer);
  return trainer;
}

async function progressOf(jobId: string): Promise<TrainingProgress | undefined> {
  const job = await queue.getJob(jobId);
  return typeof job?.progress === 'object' ? (job.progress as TrainingProgress) : undefined;
}

const epochReached = (jobId: string, epoch: number) =>
  waitFor(async () => ((await progressOf(jobId))?.epoch ?? 0) >= epoch, { timeoutMs: 120_000, intervalMs: 100, what: `epoch ${epoch}` });

describe('a trainer restarted mid-training', () => {
  it('resumes from the last epoch checkpoint after a graceful stop and after a crash, and publishes once', async () => {
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'set'), 20, 80);
    const job = await enqueueTraining(queue, 'restart', {
      task: 'tumor-binary',
      dataset: { kind: 'local', path: dataset },
      hyperParameters: { ...TINY_TRAINING, epochs: 3 },
      requestedBy: 'ops',
    });
    const jobId = job.id!;

    // Graceful stop after epoch 1: the run is handed back to the queue, nothing is published.
    const first = start();
    await first.ready;
    await epochReached(jobId, 1);
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(['delayed', 'waiting']).toContain(await (await queue.getJob(jobId))!.getState());
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([]);

    // The next trainer continues after epoch 1; then it crashes without any chance to clean up.
    const second = start();
    await epochReached(jobId, 2);
    expect((await progressOf(jobId))?.resumedFromEpoch).toBe(1);
    second.child.kill('SIGKILL');
    await second.exited;
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([]);

    // A third trainer takes the stalled job over and runs the last epoch from the epoch-2 checkpoint.
    const third = start();
    const result = (await waitFor(async () => (await queue.getJob(jobId))?.returnvalue, { timeoutMs: 180_000, intervalMs: 200 })) as TrainingResult;
    const finished = (await queue.getJob(jobId))!;
    expect(finished.stalledCounter).toBe(1);
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([result.version]);
    const history = JSON.parse((await env.registry.readFile('tumor-binary', result.version, 'history.json')).toString()) as unknown[];
    expect(history).toHaveLength(3);
    expect(third.logs.some((line) => line.includes('"training finished"'))).toBe(true);
  }, 400_000);
});
