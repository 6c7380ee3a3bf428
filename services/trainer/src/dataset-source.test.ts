import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ObjectStore } from '@btd/shared';
import { DatasetFolderUnreadableError, InvalidDatasetError, resolveTrainingDataset, type DatasetResolver } from './dataset-source.js';

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

function resolver(allowedRoots = [root]): DatasetResolver {
  return { store: null as unknown as ObjectStore, cacheDir: path.join(dir, 'cache'), allowedRoots };
}

const local = (folder: string, allowedRoots?: string[]) => resolveTrainingDataset({ kind: 'local', path: folder }, resolver(allowedRoots));

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

  it('is refused when a link under a root leads it outside every root, and accepted when links keep it within them', async () => {
    const other = path.join(dir, 'other-root');
    for (const folder of [path.join(dir, 'elsewhere', 'set'), path.join(root, 'tiny'), path.join(other, 'set')]) await mkdir(folder, { recursive: true });
    await symlink(path.join(dir, 'elsewhere'), path.join(root, 'escape'));
    await symlink('/etc', path.join(root, 'tiny', 'etc'));
    await symlink(path.join(root, 'tiny'), path.join(root, 'assembled'));
    await symlink(path.join(other, 'set'), path.join(root, 'into-other'));
    await symlink(root, path.join(dir, 'root-link'));
    const roots = [root, other];

    for (const folder of [path.join(root, 'escape'), path.join(root, 'escape', 'set'), path.join(root, 'tiny', 'etc')]) {
      await expect(local(folder, roots), folder).rejects.toThrow(DatasetFolderUnreadableError);
      await expect(local(folder, roots)).rejects.toThrow(`dataset folder ${folder} is a link, or lies under one, that leads outside the allowed roots (TRAINER_DATASET_ROOTS (${root}, ${other}))`);
    }
    // Within the roots: a dataset assembled by links, a link into another root, and a root that is itself a link.
    expect(await local(path.join(root, 'assembled'), roots)).toBe(path.join(root, 'assembled'));
    expect(await local(path.join(root, 'into-other'), roots)).toBe(path.join(root, 'into-other'));
    expect(await local(path.join(dir, 'root-link', 'tiny'), [path.join(dir, 'root-link')])).toBe(path.join(dir, 'root-link', 'tiny'));
    // Another root is no root of this trainer's: the link into it leads out.
    await expect(local(path.join(root, 'into-other'))).rejects.toThrow(/leads outside the allowed roots/);
  });
});
