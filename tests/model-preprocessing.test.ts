import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inputBatch, toModelInput } from '../packages/model/src/data/model-input.js';
import { decodeGrey } from '../packages/model/src/data/decode-image.js';
import { ImageDecodeError } from '../packages/model/src/data/image-decode-error.js';
import { loadPreprocessedDataset } from '../packages/model/src/data/preprocessed-dataset.js';
import { defaultPreprocessParams, preprocessImage } from '../packages/model/src/data/preprocess.js';
import type { DatasetListing } from '../packages/model/src/data/dataset-folder.js';
import { datasetsDir } from './helpers/repo-paths.js';

const root = datasetsDir();
const cacheDir = await mkdtemp(path.join(tmpdir(), 'btd-cache-'));
afterAll(() => rm(cacheDir, { recursive: true, force: true }));

describe.skipIf(!root)('preprocessing', () => {
  // y355.jpg holds PNG data under a .jpg name; no1.jpg is a JPEG.
  const names = ['yes/y0.jpg', 'yes/y355.jpg', 'no/no1.jpg', 'no/no400.jpg'];

  async function listing(): Promise<DatasetListing> {
    return {
      ignoredFolders: [],
      files: names.map((relPath) => ({ path: path.join(root!, 'br35h', relPath), relPath, label: relPath.startsWith('yes') ? 'tumor' : 'no_tumor', size: 0, mtimeMs: 0 })),
    };
  }

  it('gives the training path (through the cache) and the serving path identical model inputs', async () => {
    const params = defaultPreprocessParams(64);
    await loadPreprocessedDataset(await listing(), params, { cacheDir });
    const cached = await loadPreprocessedDataset(await listing(), params, { cacheDir });
    expect(cached.files.map((f) => f.relPath)).toEqual(names);
    for (let i = 0; i < names.length; i++) {
      const served = await preprocessImage(await readFile(path.join(root!, 'br35h', names[i]!)), params);
      const training = inputBatch(cached.pixels, [i], params.size);
      expect(Buffer.from(toModelInput(served.pixels).buffer).equals(Buffer.from(training.buffer))).toBe(true);
      expect(served.geometry).toEqual(cached.geometries[i]);
    }
  });

  it('decodes by content, crops the black border and scales to [0, 1]', async () => {
    const bytes = await readFile(path.join(root!, 'br35h', 'yes/y355.jpg'));
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    const grey = await decodeGrey(bytes);
    const out = await preprocessImage(bytes, defaultPreprocessParams(64));
    expect(out.pixels).toHaveLength(64 * 64);
    // The head fills the square: the crop is smaller than the original and the square covers it.
    expect(out.geometry.squareSide).toBeLessThanOrEqual(Math.max(grey.width, grey.height));
    const input = toModelInput(out.pixels);
    expect(Math.max(...input)).toBeLessThanOrEqual(1);
    expect(Math.min(...input)).toBeGreaterThanOrEqual(0);
  });

  it('rejects what is not an image with a clear reason', async () => {
    await expect(preprocessImage(new Uint8Array(0), defaultPreprocessParams(64))).rejects.toThrow(/empty file/);
    await expect(preprocessImage(Buffer.from('not an image at all'), defaultPreprocessParams(64))).rejects.toBeInstanceOf(ImageDecodeError);
    const jpeg = await readFile(path.join(root!, 'br35h', 'no/no1.jpg'));
    await expect(preprocessImage(jpeg.subarray(0, 300), defaultPreprocessParams(64))).rejects.toBeInstanceOf(ImageDecodeError);
  });
});
