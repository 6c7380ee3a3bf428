import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, liveTrainerDatasets, publishTrainerDatasets, type DatasetRoot } from '@btd/shared';
import { DATASET_PUBLICATION_DEFAULTS, listDatasetRoot, publishDatasets, type DatasetPublication, type ListingBounds } from '../services/trainer/src/dataset-publication.js';
import { useApiHarness } from './api-harness.js';
import { relinkOnceResolved } from './helpers/index.js';
import { requestLocalTraining } from './trainer-fixtures.js';

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

const train = (folder: string) => requestLocalTraining(harness.env, folder);

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
      {
        trainer: publication.trainer,
        cwd: process.cwd(),
        roots: [
          { path: root, folders: ['tiny', 'tiny/yes'], unlisted: [] },
          { path: missingRoot, folders: null, unlisted: [] },
        ],
      },
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

  it('accepts a folder nested deeper in a root, and refuses a typo at any depth, naming the folder that lacks it', async () => {
    for (const folder of ['site-a/2026-11/br35h/yes', 'site-a/2026-11/br35h/no', 'brain-mri-4class/Training/glioma', 'brain-mri-4class/Testing']) {
      await mkdir(path.join(root, folder), { recursive: true });
    }
    publication = await start(root);

    for (const folder of ['site-a/2026-11/br35h', 'brain-mri-4class/Training', 'site-a']) {
      expect(await train(path.join(root, folder)), folder).toMatchObject({ status: 202 });
    }
    const typos = {
      'site-a/2026-11/br53h': `${root}/site-a/2026-11 holds no folder br53h (it holds br35h)`,
      'brain-mri-4class/Trainig': `${root}/brain-mri-4class holds no folder Trainig (it holds Testing, Training)`,
      'site-b/2026-11/br35h': `${root} holds no folder site-b (it holds brain-mri-4class, site-a, tiny)`,
      'site-a/2026-11/br35h/yes/more': `${root}/site-a/2026-11/br35h/yes holds no folder more (it holds none)`,
    };
    for (const [folder, closest] of Object.entries(typos)) {
      const refused = await train(path.join(root, folder));
      expect(refused, folder).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
      expect(refused.body.message).toContain(`is not available to any running trainer: ${closest}; a local dataset must be a folder under`);
    }
    expect(await queuedTrainings()).toBe(3);
  });

  it('accepts, for the trainer to check, a folder under one whose sub-folders are too many or too deep to publish, and still refuses a typo above it', async () => {
    for (let i = 0; i < 12; i++) await mkdir(path.join(root, 'many', `set-${i}`), { recursive: true });
    await mkdir(path.join(root, 'deep', 'a', 'b', 'c'), { recursive: true });
    publication = await publishDatasets({ redis: harness.env.redis, prefix: harness.env.prefix, datasetRoots: root, logger, maxFolders: 8, maxDepth: 2 });
    expect((await liveTrainerDatasets(harness.env.redis, harness.env.prefix))[0]?.roots).toEqual([
      { path: root, folders: ['deep', 'deep/a', 'many', 'tiny', 'tiny/yes'], unlisted: ['deep/a', 'many', 'tiny/yes'] },
    ]);

    for (const folder of ['many/set-11', 'many/set-99', 'deep/a/b/c', 'deep/a/typo']) {
      expect(await train(path.join(root, folder)), folder).toMatchObject({ status: 202 });
    }
    for (const folder of ['mnay/set-11', 'deep/b/c']) {
      expect(await train(path.join(root, folder)), folder).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
    }
  });

  it('publishes a bounded listing of a root holding thousands of folders, and accepts any folder under what it could not list', async () => {
    await Promise.all(Array.from({ length: 1500 }, (_, i) => mkdir(path.join(root, 'archive', `scan-${i}`), { recursive: true })));
    publication = await start(root);
    const [published] = (await liveTrainerDatasets(harness.env.redis, harness.env.prefix))[0]?.roots ?? [];
    expect(published).toEqual({ path: root, folders: ['archive', 'tiny', 'tiny/yes'], unlisted: ['archive'] });
    expect(await train(path.join(root, 'archive', 'scan-1499'))).toMatchObject({ status: 202 });
    expect(await train(path.join(root, 'archiv', 'scan-1499'))).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });

    // A root whose entries alone pass the bound is not listed at all: nothing under it can be refused.
    await publication.close();
    publication = await publishDatasets({ redis: harness.env.redis, prefix: harness.env.prefix, datasetRoots: root, logger, maxEntries: 1 });
    expect((await liveTrainerDatasets(harness.env.redis, harness.env.prefix))[0]?.roots).toEqual([{ path: root, folders: [], unlisted: [''] }]);
    expect(await train(path.join(root, 'archiv', 'scan-1499'))).toMatchObject({ status: 202 });
    const outside = await train('data/scratch/tiny');
    expect(outside.body.message).toContain(`TRAINER_DATASET_ROOTS, ${root} (too large to list);`);
  });

  it('sees a folder copied in once the trainer refreshes what it publishes', async () => {
    publication = await publishDatasets({ redis: harness.env.redis, prefix: harness.env.prefix, datasetRoots: root, logger, intervalMs: 200 });
    const later = path.join(root, 'later');
    expect(await train(later)).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
    await mkdir(later);
    await expect.poll(async () => (await train(later)).status, { timeout: 20_000, interval: 250 }).toBe(202);
  });

  it('lists a folder reached again through a link, and a hidden one, without what lies under them, and accepts a folder there for the trainer to check', async () => {
    // A link back up the tree, which would be listed inside itself, and a NetApp-style snapshot folder holding copies of the tree.
    await symlink(path.join(root, 'tiny'), path.join(root, 'tiny', 'latest'));
    await mkdir(path.join(root, '.snapshot', 'hourly.0', 'tiny', 'yes'), { recursive: true });
    expect(await listDatasetRoot(root, DATASET_PUBLICATION_DEFAULTS)).toEqual({
      path: root,
      folders: ['.snapshot', 'tiny', 'tiny/latest', 'tiny/yes'],
      unlisted: ['.snapshot', 'tiny/latest'],
    });
    publication = await start(root);
    expect((await train(path.join(root, 'tiny', 'latest', 'yes'))).status).toBe(202);
    expect((await train(path.join(root, '.snapshot', 'hourly.0', 'tiny'))).status).toBe(202);
    expect(await train(path.join(root, 'tiny', 'no'))).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
  });

  it('publishes a folder that a link leads out of every root as outside, without what lies under it, and refuses it; links within the roots are listed and accepted', async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'btd-dataset-other-root-'));
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'btd-dataset-elsewhere-'));
    try {
      await Promise.all([mkdir(path.join(other, 'set', 'yes'), { recursive: true }), mkdir(path.join(elsewhere, 'yes'), { recursive: true })]);
      await symlink(elsewhere, path.join(root, 'escape'));
      await symlink('/etc', path.join(root, 'tiny', 'etc'));
      // A dataset assembled by links, and a link into the other root.
      await mkdir(path.join(root, 'mix'));
      await symlink(path.join(root, 'tiny', 'yes'), path.join(root, 'mix', 'yes'));
      await symlink(path.join(other, 'set'), path.join(root, 'into-other'));
      publication = await start(`${root},${other}`);
      const [published] = await liveTrainerDatasets(harness.env.redis, harness.env.prefix);
      expect(published?.roots[0]).toEqual({
        path: root,
        folders: ['into-other', 'into-other/yes', 'mix', 'mix/yes', 'tiny', 'tiny/yes'],
        // Reached again, after mix/yes.
        unlisted: ['tiny/yes'],
        outside: ['escape', 'tiny/etc'],
      });

      for (const [folder, link] of [['escape', 'escape'], ['escape/yes', 'escape'], ['tiny/etc', 'tiny/etc'], ['tiny/etc/ssl', 'tiny/etc']] as const) {
        const refused = await train(path.join(root, folder));
        expect(refused, folder).toMatchObject({ status: 422, body: { code: 'dataset_not_available' } });
        expect(refused.body.message).toContain(`is not available to any running trainer: ${path.join(root, link)} is a link that leads outside the trainer's TRAINER_DATASET_ROOTS, so nothing is read through it;`);
        // Only the folders within the roots are named.
        expect(refused.body.message).toContain(`${root} (into-other, mix, tiny)`);
      }
      for (const folder of ['mix', 'mix/yes', 'into-other/yes', 'tiny/yes']) {
        expect(await train(path.join(root, folder)), folder).toMatchObject({ status: 202 });
      }
    } finally {
      await Promise.all([other, elsewhere].map((dir) => rm(dir, { recursive: true, force: true })));
    }
  });

  it('lists a folder a link leads to within the roots where the check found it, not where the link leads once changed', async () => {
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'btd-dataset-elsewhere-'));
    try {
      await Promise.all([mkdir(path.join(elsewhere, 'secret')), mkdir(path.join(root, 'shelf', 'set', 'yes'), { recursive: true })]);
      const link = path.join(root, 'current');
      await symlink(path.join(root, 'shelf', 'set'), link);
      relinkOnceResolved(new Map([[link, elsewhere]]));
      const { folders } = await listDatasetRoot(root, DATASET_PUBLICATION_DEFAULTS);
      expect(folders).toContain('current/yes');
      expect(folders).not.toContain('current/secret');
    } finally {
      relinkOnceResolved.restore();
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('publishes a root whose listing fails half-way as unlisted, with the others listed, and accepts a folder under it for the trainer to check', async () => {
    const { env } = harness;
    const broken = path.join(root, 'broken');
    const listRoot = (dir: string, bounds: ListingBounds) => (dir === broken ? Promise.reject(new Error('EIO: i/o error, scandir')) : listDatasetRoot(dir, bounds));
    publication = await publishDatasets({ redis: env.redis, prefix: env.prefix, datasetRoots: `${root},${broken}`, logger, listRoot });
    const [published] = await liveTrainerDatasets(env.redis, env.prefix);
    expect(published?.roots).toEqual([
      { path: root, folders: ['tiny', 'tiny/yes'], unlisted: [] },
      { path: broken, folders: [], unlisted: [''] },
    ]);
    expect((await train(path.join(broken, 'set'))).status).toBe(202);
  });

  it('publishes a root whose listing hangs unlisted, starts no other listing of it meanwhile, and publishes what that listing found once it ends', async () => {
    const { env } = harness;
    let listings = 0;
    let release: (() => void) | undefined;
    // Reactions added to the hung listing (and to what is chained on it): each refresh that awaited it again would add one for good.
    let reactions = 0;
    class CountedPromise<T> extends Promise<T> {
      override then<A = T, B = never>(onFulfilled?: ((value: T) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
        reactions += 1;
        return super.then(onFulfilled, onRejected);
      }
    }
    // The first listing answers; the second hangs, as one of a hard-mounted root gone away does, until released.
    const listRoot = (dir: string, bounds: ListingBounds): Promise<DatasetRoot> => {
      if (++listings !== 2) return listDatasetRoot(dir, bounds);
      return new CountedPromise<DatasetRoot>((resolve, reject) => {
        release = () => void listDatasetRoot(dir, bounds).then(resolve, reject);
      });
    };
    const published = async () => (await liveTrainerDatasets(env.redis, env.prefix))[0]?.roots;
    publication = await publishDatasets({ redis: env.redis, prefix: env.prefix, datasetRoots: root, logger, intervalMs: 20, listingWaitMs: 50, listRoot });
    // Published unlisted because the second listing hangs (on a busy machine the first may also have outlasted the wait).
    await expect.poll(async () => listings === 2 && (await published()), { timeout: 10_000 }).toEqual([{ path: root, folders: [], unlisted: [''] }]);
    const reactionsOnceHung = reactions;
    // Many refresh periods later, the hung listing is still the only one started since, and the trainer still published.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(listings).toBe(2);
    expect(await published()).toEqual([{ path: root, folders: [], unlisted: [''] }]);
    expect(reactions).toBe(reactionsOnceHung);

    await mkdir(path.join(root, 'later'));
    release?.();
    await expect.poll(published, { timeout: 10_000 }).toEqual([{ path: root, folders: ['later', 'tiny', 'tiny/yes'], unlisted: [] }]);
  });

  it('starts no other listing of a root while its listing hangs, and publishes nothing a listing ended after the trainer stopped would', async () => {
    const { env } = harness;
    let listings = 0;
    let release: (() => void) | undefined;
    // The first listing answers; the next hangs, as one of a hard-mounted root gone away does, until released.
    const listRoot = async (dir: string, bounds: ListingBounds) => {
      if (++listings > 1) await new Promise<void>((resolve) => (release = resolve));
      return listDatasetRoot(dir, bounds);
    };
    publication = await publishDatasets({ redis: env.redis, prefix: env.prefix, datasetRoots: root, logger, intervalMs: 20, listRoot });
    await expect.poll(() => listings, { timeout: 10_000 }).toBe(2);
    // Many refresh periods later, the hung listing is still the only one started.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(listings).toBe(2);

    await publication.close();
    publication = undefined;
    release?.();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await liveTrainerDatasets(env.redis, env.prefix)).toEqual([]);
    expect(listings).toBe(2);
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
