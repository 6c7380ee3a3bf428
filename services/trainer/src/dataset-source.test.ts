import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ObjectStore } from '@btd/shared';
import { InvalidDatasetError, resolveTrainingDataset, type DatasetResolver } from './dataset-source.js';

let dir: string;
let root: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'btd-dataset-source-'));
  root = path.join(dir, 'root');
  await mkdir(root);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function resolver(): DatasetResolver {
  return { store: null as unknown as ObjectStore, cacheDir: path.join(dir, 'cache'), allowedRoots: [root] };
}

const local = (folder: string) => resolveTrainingDataset({ kind: 'local', path: folder }, resolver());

describe('a local dataset folder', () => {
  it('is accepted inside an allowed root, also when its name starts with two dots', async () => {
    for (const name of ['scans', '..scans', '...', 'a/..b']) {
      await mkdir(path.join(root, name), { recursive: true });
      expect(await local(path.join(root, name))).toBe(path.join(root, name));
    }
    expect(await local(root)).toBe(root);
  });

  it('is refused outside the allowed roots, however the path gets there', async () => {
    await mkdir(path.join(dir, 'elsewhere'));
    await mkdir(path.join(dir, 'root-sibling'));
    for (const folder of [path.join(dir, 'elsewhere'), path.join(root, '..'), path.join(root, '../elsewhere'), path.join(dir, 'root-sibling')]) {
      await expect(local(folder)).rejects.toThrow(InvalidDatasetError);
      await expect(local(folder)).rejects.toThrow(/outside the allowed roots/);
    }
  });
});
