import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { liveTrainerDatasets, type TrainingProgress } from '@btd/shared';
import { useApiHarness } from './api-harness.js';
import { TEST_REDIS_URL, waitFor } from './helpers/index.js';
import { TINY_TRAINING, datasetRootsWithShared, linkDataset, requestLocalTraining, spawnTrainer, type TrainerProcess } from './trainer-fixtures.js';

const harness = useApiHarness();
const children: TrainerProcess[] = [];
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'btd-trainer-roots-'));
  await Promise.all(['a', 'b'].map((root) => mkdir(path.join(dir, root))));
});

afterEach(async () => {
  for (const trainer of children.splice(0)) {
    // SIGKILL ends a stopped (SIGSTOP) process as well.
    if (trainer.child.exitCode === null && trainer.child.signalCode === null) trainer.child.kill('SIGKILL');
    await trainer.exited;
  }
  await rm(dir, { recursive: true, force: true });
});

/** Starts a trainer process whose dataset roots are `<dir>/<root>` (and the shared datasets its links lead to), on the test API's queue and bucket. */
async function startTrainer(root: 'a' | 'b', extraEnv: Record<string, string> = {}): Promise<TrainerProcess & { name: string }> {
  const { env } = harness;
  const trainer = spawnTrainer({
    ...harness.s3.env(env.config),
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: env.prefix,
    TRAINER_WORK_DIR: path.join(dir, `work-${root}`),
    TRAINER_DATASET_ROOTS: datasetRootsWithShared(path.join(dir, root)),
    MODELS_DIR: path.join(dir, 'no-bundled-models'),
    TRAINER_DATASET_WAIT_MS: '600000',
    ...extraEnv,
  });
  children.push(trainer);
  await trainer.ready;
  // The name it publishes itself under: host, pid and a random part.
  const published = await liveTrainerDatasets(env.redis, env.prefix);
  const name = published.find((datasets) => datasets.trainer.startsWith(`${hostname()}-${trainer.child.pid}-`))?.trainer;
  if (!name) throw new Error(`trainer ${root} published nothing`);
  return Object.assign(trainer, { name });
}

/** A trainer's roots as its refusals name them. */
const rootsShown = (root: 'a' | 'b'): string => datasetRootsWithShared(path.join(dir, root)).split(',').join(', ');

interface TrainingView {
  state: string;
  progress: TrainingProgress | null;
  failedReason?: string;
}

const submit = (folder: string) => requestLocalTraining(harness.env, folder, { ...TINY_TRAINING, epochs: 1, maxImages: 20 });

async function view(id: string): Promise<TrainingView> {
  const { env } = harness;
  return (await env.api.app.inject({ method: 'GET', url: `/v1/trainings/${id}`, headers: env.auth('ops') })).json<TrainingView>();
}

/** Waits until the training, as the API shows it, satisfies `ready`. */
const viewUntil = (id: string, ready: (training: TrainingView) => boolean, what: string) =>
  waitFor(async () => {
    const training = await view(id);
    return ready(training) ? training : undefined;
  }, { timeoutMs: 240_000, intervalMs: 200, what });

const finishedOn = (trainer: TrainerProcess, id: string) => trainer.logs.some((line) => line.includes('"training finished"') && line.includes(`"jobId":"${id}"`));

describe('trainers with different dataset roots', () => {
  it('run a training on the trainer that can read its folder, after one that cannot took it first and handed it back', async () => {
    const dataset = await linkDataset(path.join(dir, 'a', 'site-1', '2026-11', 'tiny'), 10, 0);
    // Queued while no trainer runs, so that the trainer that cannot read it is the first to take it.
    const first = await submit(dataset);
    expect(first.status).toBe(202);
    const id = first.body.id!;

    const b = await startTrainer('b');
    const waiting = await viewUntil(id, (training) => training.progress?.datasetWait?.refusedBy.length === 1 || training.state === 'failed', 'trainer b to hand the training back');
    expect(waiting).toMatchObject({
      state: 'delayed',
      progress: {
        phase: 'preparing',
        datasetWait: {
          refusedBy: [{ trainer: b.name, reason: `dataset folder ${dataset} is outside the allowed roots (TRAINER_DATASET_ROOTS: ${rootsShown('b')})` }],
          waitingFor: [],
          unreadableSince: expect.any(Number),
        },
      },
    });

    const a = await startTrainer('a');
    // With both running, a nested folder is accepted and a typo in it refused, from what each publishes.
    const second = await submit(dataset);
    expect(second.status).toBe(202);
    const typo = await submit(path.join(dir, 'a', 'site-1', '2026-11', 'tiyn'));
    expect(typo).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
    expect(typo.body.message).toContain(`${path.join(dir, 'a', 'site-1', '2026-11')} holds no folder tiyn (it holds tiny)`);

    for (const training of [id, second.body.id!]) {
      const done = await viewUntil(training, (t) => t.state === 'completed' || t.state === 'failed', `training ${training} to end`);
      expect(done, training).toMatchObject({ state: 'completed', progress: { phase: 'done' } });
      // The wait ends with it: the progress of the trainer that read the folder replaced it.
      expect(done.progress?.datasetWait).toBeUndefined();
      expect(finishedOn(a, training), training).toBe(true);
      expect(finishedOn(b, training), training).toBe(false);
    }
  }, 400_000);

  it('fail a training once no running trainer could read its folder any more, naming the trainers that could not and why', async () => {
    const dataset = await linkDataset(path.join(dir, 'a', 'tiny'), 4, 0);
    const a = await startTrainer('a');
    const b = await startTrainer('b', { TRAINER_DATASET_WAIT_MS: '1000' });
    // Trainer a stays published but takes nothing, as a busy one would; b takes the training.
    a.child.kill('SIGSTOP');
    const submitted = await submit(dataset);
    expect(submitted.status).toBe(202);
    const id = submitted.body.id!;

    const waiting = await viewUntil(id, (training) => training.progress?.datasetWait !== undefined || training.state === 'failed', 'trainer b to hand the training back');
    expect(waiting).toMatchObject({ state: 'delayed', progress: { datasetWait: { refusedBy: [{ trainer: b.name }], waitingFor: [a.name] } } });
    expect(waiting.progress?.datasetWait?.unreadableSince).toBeUndefined();

    // Once a's publication lapses, nothing can read the folder: b fails the training after TRAINER_DATASET_WAIT_MS.
    a.child.kill('SIGKILL');
    await a.exited;
    const failed = await viewUntil(id, (training) => training.state === 'failed', 'the training to fail');
    expect(failed.failedReason).toBe(
      `dataset folder ${dataset} could not be read by any trainer (trainer ${b.name}: dataset folder ${dataset} is outside the allowed roots ` +
        `(TRAINER_DATASET_ROOTS: ${rootsShown('b')})), and no running trainer whose roots may hold it came within TRAINER_DATASET_WAIT_MS (1000 ms)`,
    );
  }, 120_000);
});
