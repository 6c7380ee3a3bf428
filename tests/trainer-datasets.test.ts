import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, liveTrainerDatasets, publishTrainerDatasets } from '@btd/shared';
import { publishDatasets, type DatasetPublication } from '../services/trainer/src/dataset-publication.js';
import { useApiHarness } from './api-harness.js';

const logger = createLogger({ name: 'trainer-datasets-test', level: 'silent', pretty: false });
const harness = useApiHarness();
let root: string;
let publication: DatasetPublication | undefined;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'btd-dataset-root-'));
  await mkdir(path.join(root, 'tiny', 'yes'), { recursive: true });
});

afterEach(async () => {
  await publication?.close();
  publication = undefined;
  await rm(root, { recursive: true, force: true });
});

/** Asks the test's API for a training on a local folder, as the ops (admin) client. */
async function train(folder: string) {
  const { env } = harness;
  const response = await env.api.app.inject({
    method: 'POST',
    url: '/v1/trainings',
    headers: env.auth('ops'),
    payload: { task: 'tumor-binary', dataset: { kind: 'local', path: folder }, hyperParameters: { epochs: 1 } },
  });
  return { status: response.statusCode, body: response.json<{ id?: string; code?: string; message?: string }>() };
}

async function queuedTrainings(): Promise<number> {
  const { env } = harness;
  const listed = await env.api.app.inject({ method: 'GET', url: '/v1/trainings', headers: env.auth('ops') });
  return listed.json<{ items: unknown[] }>().items.length;
}

const start = (datasetRoots: string) => publishDatasets({ redis: harness.env.redis, prefix: harness.env.prefix, datasetRoots, logger });

describe('a training on a local folder', () => {
  it('is refused before queueing, naming the allowed roots, when no running trainer could read the folder', async () => {
    const missingRoot = path.join(root, 'not-there');
    publication = await start(`${root}, ${missingRoot}`);
    expect(await liveTrainerDatasets(harness.env.redis, harness.env.prefix)).toEqual([
      { trainer: publication.trainer, cwd: process.cwd(), roots: [{ path: root, folders: ['tiny'] }, { path: missingRoot, folders: null }] },
    ]);

    for (const folder of ['data/scratch/tiny', path.join(root, 'gone'), `${root}/../elsewhere`, path.join(missingRoot, 'tiny')]) {
      const refused = await train(folder);
      expect(refused, folder).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
      expect(refused.body.message).toContain(`dataset folder ${folder} is not available to any running trainer`);
      expect(refused.body.message).toContain(`TRAINER_DATASET_ROOTS, ${root} (tiny); ${missingRoot} (missing)`);
      expect(refused.body.message).toContain(`working directory (${process.cwd()})`);
    }
    expect(await queuedTrainings()).toBe(0);

    // Inside a root, in a folder the trainer has: absolute, deeper, or relative to the trainer's working directory.
    for (const folder of [path.join(root, 'tiny'), path.join(root, 'tiny', 'yes'), path.relative(process.cwd(), path.join(root, 'tiny'))]) {
      expect(await train(folder), folder).toMatchObject({ status: 202, body: { id: expect.stringMatching(/^training-/) } });
    }
    expect(await queuedTrainings()).toBe(3);
  });

  it('sees a folder copied in once the trainer refreshes what it publishes', async () => {
    publication = await publishDatasets({ redis: harness.env.redis, prefix: harness.env.prefix, datasetRoots: root, logger, intervalMs: 200 });
    const later = path.join(root, 'later');
    expect(await train(later)).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
    await mkdir(later);
    await expect.poll(async () => (await train(later)).status, { timeout: 20_000, interval: 250 }).toBe(202);
  });

  it('is accepted as before while no trainer runs, once the trainer stops, and once a killed trainer publication lapses', async () => {
    const { env } = harness;
    expect(await train('data/scratch/tiny')).toMatchObject({ status: 202 });

    publication = await start(root);
    expect(await train('data/scratch/tiny')).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
    await publication.close();
    expect(await liveTrainerDatasets(env.redis, env.prefix)).toEqual([]);
    expect(await train('data/scratch/tiny')).toMatchObject({ status: 202 });

    // A trainer killed after its last refresh: its publication outlives it by the TTL only.
    await publishTrainerDatasets(env.redis, env.prefix, { trainer: 'killed', cwd: process.cwd(), roots: [{ path: root, folders: ['tiny'] }] }, 1_000);
    expect(await train('data/scratch/tiny')).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
    await expect.poll(() => liveTrainerDatasets(env.redis, env.prefix), { timeout: 20_000, interval: 200 }).toEqual([]);
    expect(await train('data/scratch/tiny')).toMatchObject({ status: 202 });
    // The lapsed trainer is gone from the set as well, not only its publication.
    expect(await env.redis.smembers(`${env.prefix}:training:trainers`)).toEqual([]);
    expect(await queuedTrainings()).toBe(3);
  });
});
