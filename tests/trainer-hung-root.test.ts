import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { liveTrainerDatasets } from '@btd/shared';
import { useApiHarness } from './api-harness.js';
import { REPO_ROOT, TEST_REDIS_URL, waitFor } from './helpers/index.js';
import { requestLocalTraining, spawnTrainer, type TrainerProcess } from './trainer-fixtures.js';

const harness = useApiHarness();
let dir: string;
let trainer: TrainerProcess | undefined;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'btd-trainer-hung-root-'));
  await Promise.all([mkdir(path.join(dir, 'ok', 'tiny', 'yes'), { recursive: true }), mkdir(path.join(dir, 'hung'))]);
});

afterEach(async () => {
  if (trainer && trainer.child.exitCode === null && trainer.child.signalCode === null) trainer.child.kill('SIGKILL');
  await trainer?.exited;
  trainer = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('a trainer whose dataset root hangs at start-up', () => {
  it('starts all the same, publishing that root unlisted and the others listed, warns naming it, and takes trainings', async () => {
    const { env } = harness;
    const [ok, hung] = [path.join(dir, 'ok'), path.join(dir, 'hung')];
    trainer = spawnTrainer({
      ...harness.s3.env(env.config),
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: env.prefix,
      TRAINER_WORK_DIR: path.join(dir, 'work'),
      TRAINER_DATASET_ROOTS: `${ok},${hung}`,
      MODELS_DIR: path.join(dir, 'no-bundled-models'),
      TRAINER_DATASET_WAIT_MS: '0',
      // Reading the entries of `hung` never ends, as on a hard-mounted NFS root whose server went away.
      NODE_OPTIONS: `--import ${path.join(REPO_ROOT, 'tests/fixtures/trainer/hung-root-listing.mjs')}`,
      BTD_HUNG_ROOT: hung,
    });
    await trainer.ready;

    const warning = trainer.logs.map((line) => JSON.parse(line) as { level: number; msg: string; root?: string }).find((line) => line.msg.includes('did not finish'));
    expect(warning).toMatchObject({ level: 40, msg: 'the listing of a dataset root did not finish; published unlisted until it does', root: hung });
    const [published] = await liveTrainerDatasets(env.redis, env.prefix);
    expect(published?.trainer).toMatch(new RegExp(`^${hostname()}-${trainer.child.pid}-`));
    expect(published?.roots).toEqual([
      { path: ok, folders: ['tiny', 'tiny/yes'], unlisted: [] },
      { path: hung, folders: [], unlisted: [''] },
    ]);

    // A folder under the hung root is accepted for the trainer to check; it takes the training and finds no such folder.
    const submitted = await requestLocalTraining(env, path.join(hung, 'set'));
    expect(submitted.status).toBe(202);
    const failedReason = await waitFor(
      async () => {
        const training = (await env.api.app.inject({ method: 'GET', url: `/v1/trainings/${submitted.body.id}`, headers: env.auth('ops') })).json<{ state: string; failedReason?: string }>();
        return training.state === 'failed' ? training.failedReason : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the trainer to take the training' },
    );
    expect(failedReason).toContain(`dataset folder ${path.join(hung, 'set')} does not exist`);
  }, 120_000);
});
