import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelRegistry, createLogger, createWorkerConnection, type Redis } from '@btd/shared';
import { publishDatasets } from '../services/trainer/src/dataset-publication.js';
import { startTrainer, type Trainer } from '../services/trainer/src/trainer.js';
import { useApiHarness } from './api-harness.js';
import { REPO_ROOT, TEST_REDIS_URL, freePort } from './helpers/index.js';
import { TINY_TRAINING, trainerConfig, uploadDataset } from './trainer-fixtures.js';

const CLI = path.join(REPO_ROOT, 'services/trainer/bin/btd-trainer.js');
const logger = createLogger({ name: 'trainer-cli-test', level: 'silent', pretty: false });

const harness = useApiHarness();
let workDir: string;
let connection: Redis;
let trainer: Trainer | undefined;

beforeEach(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'btd-trainer-cli-'));
  connection = createWorkerConnection(TEST_REDIS_URL);
});

afterEach(async () => {
  await trainer?.close();
  trainer = undefined;
  connection.disconnect();
  await rm(workDir, { recursive: true, force: true });
});

/** Runs the built command line as a user would, with the test API as its default address. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', BTD_API_URL: harness.env.url };
  const child = spawn(process.execPath, [CLI, ...args], { env, cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

const tinyOptions = Object.entries({ epochs: TINY_TRAINING.epochs, 'input-size': TINY_TRAINING.inputSize, 'batch-size': TINY_TRAINING.batchSize, 'max-images': 32, seed: TINY_TRAINING.seed })
  .flatMap(([name, value]) => [`--${name}`, String(value)]);

describe('btd-trainer', () => {
  it('starts a training, follows it epoch by epoch and prints the published version', async () => {
    const { env } = harness;
    await uploadDataset(env.store, 'datasets/tiny/', 16, 0);
    const registry = new ModelRegistry({ store: env.store, redis: env.redis, namespace: env.prefix });
    trainer = startTrainer({ config: trainerConfig(env.prefix, workDir), connection, registry, store: env.store, logger });

    const views = ['--test-time-rotations', '-5,5', '--test-time-rotations-below', '0.9'];
    const run = await cli(['start', '--task', 'tumor-binary', '--data', 's3://datasets/tiny/', ...tinyOptions, ...views, '--watch', '--interval', '200', '--key', env.keys.ops]);

    expect(run.code, run.stderr).toBe(0);
    // stderr is a pipe, not a terminal: one line per epoch instead of a bar.
    expect(run.stderr).toMatch(/^epoch 1\/2 loss \d\.\d{4} acc \d\.\d{4} val_acc \d\.\d{4}$/m);
    expect(run.stderr).toMatch(/^epoch 2\/2 loss .* done$/m);
    const outcome = JSON.parse(run.stdout) as { id: string; version: string };
    expect(outcome).toMatchObject({
      id: expect.stringMatching(/^training-/),
      task: 'tumor-binary',
      promoted: false,
      reasons: ['no evaluation set is configured for tumor-binary'],
    });
    expect(await registry.listVersionIds('tumor-binary')).toEqual([outcome.version]);
    const manifest = await registry.readManifest('tumor-binary', outcome.version);
    expect(manifest).toMatchObject({ testTimeRotations: [-5, 5], testTimeRotationsBelow: 0.9 });
    // Without an evaluation set the gate measured nothing; the version's own test split did.
    const test = manifest.metrics?.test as { n: number; accuracy: number; perClass: Record<string, { recall: number | null; support: number }> };
    expect(test.n).toBeGreaterThan(0);
    expect(outcome).toMatchObject({ metrics: null, testSplitMetrics: { n: test.n, accuracy: test.accuracy, sensitivity: test.perClass.tumor?.recall ?? null } });
    const shown = await fetch(`${env.url}/v1/trainings/${outcome.id}`, { headers: { authorization: `Bearer ${env.keys.alice}` } });
    expect(((await shown.json()) as { result: unknown }).result).toMatchObject({ metrics: null, testSplitMetrics: { n: test.n, accuracy: test.accuracy } });

    const listed = await cli(['list', '--json', '--key', env.keys.alice]);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: outcome.id, state: 'completed', result: expect.objectContaining({ version: outcome.version }) })]);
  }, 300_000);

  it('names the roots a running trainer reads when it cannot read the folder, and says a relative path is the trainer\'s', async () => {
    const { env } = harness;
    const publication = await publishDatasets({ redis: env.redis, prefix: env.prefix, datasetRoots: workDir, logger });
    try {
      const refused = await cli(['start', '--task', 'tumor-binary', '--data', 'data/scratch/tiny', '--epochs', '1', '--key', env.keys.ops]);
      expect(refused).toMatchObject({ code: 1, stdout: '' });
      expect(refused.stderr).toContain('btd-trainer: data/scratch/tiny is read by the trainer, relative to its working directory, not this one\n');
      expect(refused.stderr).toContain(
        `btd-trainer: the API refused the request: dataset folder data/scratch/tiny is not available to any running trainer: a local dataset must be a folder under the trainer's TRAINER_DATASET_ROOTS, ${workDir} (empty)`,
      );
      const listed = await cli(['list', '--json', '--key', env.keys.ops]);
      expect(JSON.parse(listed.stdout)).toEqual([]);
    } finally {
      await publication.close();
    }
  });

  it('says why it cannot: not an admin key, an unknown or malformed id, an unknown key, no API', async () => {
    const { env } = harness;
    await uploadDataset(env.store, 'datasets/tiny/', 1, 0);

    const refused = await cli(['start', '--task', 'tumor-binary', '--data', 's3://datasets/tiny/', '--key', env.keys.alice]);
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toMatch(/^btd-trainer: not an admin key \(this route is for admin clients\)/);

    const badAngles = await cli(['start', '--task', 'tumor-binary', '--data', 's3://datasets/tiny/', '--test-time-rotations', '5,,x', '--key', env.keys.ops]);
    expect(badAngles).toMatchObject({ code: 1, stdout: '' });
    expect(badAngles.stderr).toContain('expected numbers separated by commas, e.g. -5,5');
    const zeroAngle = await cli(['start', '--task', 'tumor-binary', '--data', 's3://datasets/tiny/', '--test-time-rotations', '0,5', '--key', env.keys.ops]);
    expect(zeroAngle.code).toBe(1);
    expect(zeroAngle.stderr).toMatch(/^btd-trainer: the API refused the request: .*testTimeRotations/);

    const unknown = await cli(['watch', 'training-nope', '--key', env.keys.alice]);
    expect(unknown).toMatchObject({ code: 1, stdout: '', stderr: 'btd-trainer: training training-nope not found\n' });

    const malformed = await cli(['watch', 'nightly', '--key', env.keys.alice]);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toMatch(/^btd-trainer: the API refused the request: params\/id must match pattern/);

    const wrongKey = await cli(['list', '--key', 'not-a-key-of-this-api']);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/did not accept the key \(unknown API key\)/);

    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const down = await cli(['list', '--api', nowhere, '--key', env.keys.alice]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot reach the API at ${nowhere} (ECONNREFUSED)`);
  });
});
