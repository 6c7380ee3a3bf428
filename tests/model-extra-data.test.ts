import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareTaskData } from '../packages/model/src/data/prepare-task-data.js';
import { blobSlice } from './helpers/blob-slice.js';

const SIDE = 48;
const png = (seed: number) => sharp(Buffer.from(blobSlice(seed, SIDE)), { raw: { width: SIDE, height: SIDE, channels: 1 } }).png().toBuffer();

async function writeImages(dir: string, seeds: number[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await Promise.all(seeds.map(async (seed) => writeFile(path.join(dir, `s${seed}.png`), await png(seed))));
}

describe('extra training data with a folder held out', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'btd-extra-'));
    await writeImages(path.join(root, 'data', 'yes'), [1, 2, 3, 4, 5, 6, 7, 8]);
    await writeImages(path.join(root, 'data', 'no'), [11, 12, 13, 14, 15, 16, 17, 18]);
    // The folder a pretrained model will be evaluated on, and extra images, one a copy of an image there.
    await writeImages(path.join(root, 'held-out', 'scans'), [500]);
    await writeImages(path.join(root, 'extra', 'yes'), [500, 501]);
    await writeImages(path.join(root, 'extra', 'no'), [502]);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps out of training every extra image that is a copy of an image of the held-out folder', async () => {
    const prepared = await prepareTaskData({
      task: 'tumor-binary',
      dataDir: path.join(root, 'data'),
      inputSize: 32,
      seed: 1,
      excludeNearDuplicatesOf: path.join(root, 'held-out'),
      extraTrainDir: path.join(root, 'extra'),
    });
    expect(prepared.extra?.files.map((file) => file.relPath).sort()).toEqual(['no/s502.png', 'yes/s501.png']);
    expect(prepared.extra).toMatchObject({ listed: 3, droppedExcluded: 1 });
    const trained = prepared.indices.train.map((i) => prepared.dataset.files[i]!.path);
    expect(trained).not.toContain(path.join(root, 'extra', 'yes', 's500.png'));
  });
});
