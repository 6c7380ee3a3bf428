import fs from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listLabeledImages, type DataConfinement } from '../packages/model/src/data/dataset-folder.js';
import { prepareTaskData } from '../packages/model/src/data/prepare-task-data.js';
import { relinkOnceResolved, sampleImages } from './helpers/index.js';

let dir: string;
const readFileOfFs = fs.promises.readFile;

beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'btd-dataset-folder-')));
});

afterEach(async () => {
  fs.promises.readFile = readFileOfFs;
  syncBuiltinESMExports();
  relinkOnceResolved.restore();
  await rm(dir, { recursive: true, force: true });
});

/** Writes `text` to each file, creating its folder. */
async function files(entries: Record<string, string>): Promise<void> {
  for (const [file, text] of Object.entries(entries)) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
}

/** The confinement of one folder, as a trainer's TRAINER_DATASET_ROOTS gives it. */
const confinedTo = (root: string): DataConfinement => ({
  allows: (real) => Promise.resolve(real === root || real.startsWith(`${root}${path.sep}`)),
  description: `TRAINER_DATASET_ROOTS (${root})`,
});

describe('listLabeledImages within a confinement', () => {
  it('reads the dataset folder, class folders and images that are links where their check found them, not where the links lead once changed', async () => {
    const [root, outside] = [path.join(dir, 'root'), path.join(dir, 'outside')];
    await files({
      [path.join(root, 'sets/v1/no/n0.jpg')]: 'inside n0',
      [path.join(root, 'shelf/yes/y0.jpg')]: 'inside y0',
      [path.join(root, 'shelf/n1.jpg')]: 'inside n1',
      [path.join(outside, 'v1/no/n0.jpg')]: 'outside n0',
      [path.join(outside, 'v1/no/n1.jpg')]: 'outside n1',
      [path.join(outside, 'v1/yes/y0.jpg')]: 'outside y0',
      [path.join(outside, 'yes/y0.jpg')]: 'outside y0',
      [path.join(outside, 'n1.jpg')]: 'outside n1',
    });
    // current -> sets/v1, whose yes -> shelf/yes and no/n1.jpg -> shelf/n1.jpg: all within the root.
    const current = path.join(root, 'current');
    await symlink(path.join(root, 'sets/v1'), current);
    await symlink(path.join(root, 'shelf/yes'), path.join(root, 'sets/v1/yes'));
    await symlink(path.join(root, 'shelf/n1.jpg'), path.join(root, 'sets/v1/no/n1.jpg'));
    relinkOnceResolved(
      new Map([
        [current, path.join(outside, 'v1')],
        [path.join(root, 'sets/v1/yes'), path.join(outside, 'yes')],
        [path.join(root, 'sets/v1/no/n1.jpg'), path.join(outside, 'n1.jpg')],
      ]),
    );

    const listing = await listLabeledImages(current, 'tumor-binary', { confinement: confinedTo(root) });
    expect(listing.refused).toBeUndefined();
    const read = await Promise.all(listing.files.map(async (file) => [file.relPath, await readFile(file.path, 'utf8')]));
    expect(read).toEqual([
      ['no/n0.jpg', 'inside n0'],
      ['no/n1.jpg', 'inside n1'],
      ['yes/y0.jpg', 'inside y0'],
    ]);
  });

  it('refuses a class folder or image a link leads outside, and reads the rest', async () => {
    const [root, outside] = [path.join(dir, 'root'), path.join(dir, 'outside')];
    await files({ [path.join(root, 'set/no/n0.jpg')]: 'inside n0', [path.join(outside, 'yes/y0.jpg')]: 'outside y0', [path.join(outside, 'n1.jpg')]: 'outside n1' });
    await symlink(path.join(outside, 'yes'), path.join(root, 'set/yes'));
    await symlink(path.join(outside, 'n1.jpg'), path.join(root, 'set/no/n1.jpg'));

    const listing = await listLabeledImages(path.join(root, 'set'), 'tumor-binary', { confinement: confinedTo(root) });
    expect(listing.files.map((file) => file.relPath)).toEqual(['no/n0.jpg']);
    const reason = `a link leads it outside TRAINER_DATASET_ROOTS (${root}); not read`;
    expect(listing.refused).toEqual([
      { relPath: 'no/n1.jpg', reason },
      { relPath: 'yes', reason },
    ]);
  });
});

/** A dataset folder of real copies of `count` slices per class of br35h, and a patients file for them (not in the folder) naming each `<patient>-<n>`. */
async function datasetWithPatients(dataDir: string, patientsFile: string, patient: string, count: number): Promise<void> {
  const rows = ['path,patient'];
  for (const folder of ['yes', 'no'] as const) {
    await mkdir(path.join(dataDir, folder), { recursive: true });
    for (const image of await sampleImages(`br35h/${folder}`, count)) {
      await copyFile(image, path.join(dataDir, folder, path.basename(image)));
      rows.push(`${folder}/${path.basename(image)},${patient}-${rows.length}`);
    }
  }
  await files({ [patientsFile]: rows.join('\n') });
}

describe('prepareTaskData within a confinement', () => {
  it('reads the patients file that is a link where its check found it, not where the link leads once changed', async () => {
    const [root, outside] = [path.join(dir, 'root'), path.join(dir, 'outside')];
    const set = path.join(root, 'set');
    await datasetWithPatients(set, path.join(root, 'shelf/patients.csv'), 'inside', 6);
    await files({ [path.join(outside, 'patients.csv')]: (await readFile(path.join(root, 'shelf/patients.csv'), 'utf8')).replaceAll(',inside-', ',outside-') });
    const own = path.join(set, 'patients.csv');
    await symlink(path.join(root, 'shelf/patients.csv'), own);
    relinkOnceResolved(new Map([[own, path.join(outside, 'patients.csv')]]));

    const prepared = await prepareTaskData({ task: 'tumor-binary', dataDir: set, inputSize: 32, seed: 1, confinement: confinedTo(root) });
    expect(prepared.patientsFile).toMatchObject({ file: own, entries: 12, unmatched: [] });
    expect(new Set(prepared.dataset.files.map((file) => file.patient?.split('-')[0]))).toEqual(new Set(['inside']));
  });

  it('reads no patients file added to the folder once it was looked for', async () => {
    const [root, outside] = [path.join(dir, 'root'), path.join(dir, 'outside')];
    const set = path.join(root, 'set');
    await datasetWithPatients(set, path.join(outside, 'patients.csv'), 'outside', 6);
    // Added as the images are read, after the folder was found to hold no patients file.
    const own = path.join(set, 'patients.csv');
    fs.promises.readFile = (async (...args: Parameters<typeof readFileOfFs>) => {
      if (String(args[0]).endsWith('.jpg') && !fs.existsSync(own)) fs.symlinkSync(path.join(outside, 'patients.csv'), own);
      return readFileOfFs(...args);
    }) as typeof readFileOfFs;
    syncBuiltinESMExports();

    const prepared = await prepareTaskData({ task: 'tumor-binary', dataDir: set, inputSize: 32, seed: 1, confinement: confinedTo(root) });
    expect(fs.existsSync(own)).toBe(true);
    expect(prepared.patientsFile).toBeUndefined();
    expect(prepared.dataset.files.filter((file) => file.patient !== undefined)).toEqual([]);
  });
});
