import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { inputBatch, toModelInput } from '../packages/model/src/data/model-input.js';
import { decodeGrey } from '../packages/model/src/data/decode-image.js';
import { ImageDecodeError } from '../packages/model/src/data/image-decode-error.js';
import { imagesAt, loadPreprocessedDataset, type PreprocessedDataset } from '../packages/model/src/data/preprocessed-dataset.js';
import { defaultPreprocessParams, preprocessImage } from '../packages/model/src/data/preprocess.js';
import { listLabeledImages, type DatasetListing } from '../packages/model/src/data/dataset-folder.js';
import { headPhantom } from './helpers/head-phantom.js';
import { datasetsDir } from './helpers/repo-paths.js';

/** Standard deviation of the grey levels of the middle half of a square image. */
function spread(pixels: Uint8Array): number {
  const side = Math.sqrt(pixels.length);
  const values: number[] = [];
  for (let y = side / 4; y < (3 * side) / 4; y++) {
    for (let x = side / 4; x < (3 * side) / 4; x++) values.push(pixels[y * side + x] as number);
  }
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
}

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

  it.each([
    ['plain', defaultPreprocessParams(64)],
    ['with local contrast equalisation', defaultPreprocessParams(64, { claheMaxSlope: 3 })],
  ])('gives the training path (through the cache) and the serving path identical model inputs (%s)', async (_, params) => {
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

  it('keeps the images before equalisation for near-duplicate search, so equalisation moves no image between splits', async () => {
    const plain = await loadPreprocessedDataset(await listing(), defaultPreprocessParams(64), { cacheDir });
    const equalised = await loadPreprocessedDataset(await listing(), defaultPreprocessParams(64, { claheMaxSlope: 3 }), { cacheDir });
    expect(equalised.params.clahe).toBeDefined();
    expect(equalised.files).toEqual(plain.files);
    expect(equalised.matchPixels).toEqual(plain.pixels);
    expect(equalised.pixels).not.toEqual(plain.pixels);
    expect(plain.matchPixels).toBeUndefined();
  });

  it('equalises local contrast only when asked, and records how in the parameters', async () => {
    // A dim head whose two halves differ by a few grey levels, on a black background.
    const side = 128;
    const grey = new Uint8Array(side * side);
    for (let y = 16; y < side - 16; y++) {
      for (let x = 16; x < side - 16; x++) grey[y * side + x] = 60 + (x < side / 2 ? 0 : 6) + ((x + y) % 8 < 4 ? 3 : 0);
    }
    const bytes = await sharp(grey, { raw: { width: side, height: side, channels: 1 } }).png().toBuffer();
    const plainParams = defaultPreprocessParams(64);
    const equalisedParams = defaultPreprocessParams(64, { claheMaxSlope: 3 });
    expect(plainParams.clahe).toBeUndefined();
    expect(equalisedParams.clahe).toEqual({ tile: 11, maxSlope: 3 });
    const plain = await preprocessImage(bytes, plainParams);
    const equalised = await preprocessImage(bytes, equalisedParams);
    expect(equalised.geometry).toEqual(plain.geometry);
    expect(spread(equalised.pixels)).toBeGreaterThan(2 * spread(plain.pixels));
  });

  it('rejects what is not an image with a clear reason', async () => {
    await expect(preprocessImage(new Uint8Array(0), defaultPreprocessParams(64))).rejects.toThrow(/empty file/);
    await expect(preprocessImage(Buffer.from('not an image at all'), defaultPreprocessParams(64))).rejects.toBeInstanceOf(ImageDecodeError);
    const jpeg = await readFile(path.join(root!, 'br35h', 'no/no1.jpg'));
    await expect(preprocessImage(jpeg.subarray(0, 300), defaultPreprocessParams(64))).rejects.toBeInstanceOf(ImageDecodeError);
  });

  it('does not serve a replaced file from the cache, even at the same size and modification time', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'btd-replaced-'));
    try {
      await mkdir(path.join(dir, 'yes'));
      await mkdir(path.join(dir, 'no'));
      await cp(path.join(root!, 'br35h', 'yes/y0.jpg'), path.join(dir, 'yes/a.jpg'));
      await cp(path.join(root!, 'br35h', 'no/no1.jpg'), path.join(dir, 'no/b.jpg'));
      const params = defaultPreprocessParams(32);
      const load = async (cache?: string) => loadPreprocessedDataset(await listLabeledImages(dir, 'tumor-binary'), params, { cacheDir: cache });
      const image = (dataset: PreprocessedDataset) => Buffer.from(imagesAt(dataset.pixels, [dataset.files.findIndex((f) => f.relPath === 'yes/a.jpg')], 32));
      const before = await load(cacheDir);
      // Another scan in its place, as a restore from a backup, cp -p or rsync -a leave it: padded to the
      // same size (a JPEG decoder stops at its end marker), with the old modification time.
      const target = path.join(dir, 'yes/a.jpg');
      const old = await stat(target);
      const others = (await readdir(path.join(root!, 'br35h', 'yes'))).sort().slice(1, 40);
      const sizes = await Promise.all(others.map(async (name) => (await stat(path.join(root!, 'br35h', 'yes', name))).size));
      const other = others.find((name, i) => name.endsWith('.jpg') && sizes[i]! < old.size)!;
      const replaced = Buffer.alloc(old.size);
      (await readFile(path.join(root!, 'br35h', 'yes', other))).copy(replaced);
      await writeFile(target, replaced);
      await utimes(target, old.atime, old.mtime);
      const now = await stat(target);
      expect([now.size, Math.round(now.mtimeMs)]).toEqual([old.size, Math.round(old.mtimeMs)]);
      const fresh = await load(undefined);
      expect(image(fresh).equals(image(before))).toBe(false);
      expect(image(await load(cacheDir)).equals(image(fresh))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A PNG of {@link headPhantom}: a textured head on black. */
function phantomPng(width: number, height: number): Promise<Buffer> {
  return sharp(headPhantom(width, height), { raw: { width, height, channels: 1 } }).png().toBuffer();
}

describe('preprocessing refuses what it cannot analyse', () => {
  it.each([
    ['wide', 20_000, 100],
    ['tall', 100, 20_000],
  ])('a %s image whose padded head region is over the resize limit, as an unsupported image naming its size', async (_, width, height) => {
    const refusal = await preprocessImage(await phantomPng(width, height), defaultPreprocessParams(64)).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ImageDecodeError);
    expect(refusal).toMatchObject({ unsupported: true, message: expect.stringContaining(`${width}×${height}`) });
  });

  /** A PNG of one grey level throughout. */
  const blankPng = (width: number, height: number, level: number) => sharp(Buffer.alloc(width * height, level), { raw: { width, height, channels: 1 } }).png().toBuffer();

  it.each([
    ['a 1×1 image', () => blankPng(1, 1, 128), /1×1 pixels is too small to analyse/],
    ['an image 31 pixels high', () => phantomPng(200, 31), /200×31 pixels is too small to analyse/],
    ['an all-black image', () => blankPng(256, 256, 0), /blank: every pixel has grey level 0/],
    ['an all-white image', () => blankPng(256, 256, 255), /blank: every pixel has grey level 255/],
    ['a 16-bit image of one stored value', () => blankPng(64, 64, 90).then((png) => sharp(png).toColourspace('grey16').png().toBuffer()), /blank/],
  ])('%s, as an unsupported image', async (_, image, reason) => {
    const refusal = await preprocessImage(await image(), defaultPreprocessParams(64)).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ImageDecodeError);
    expect(refusal).toMatchObject({ unsupported: true, message: expect.stringMatching(reason) });
  });

  it('but analyses a head of 32×32 pixels, the smallest it accepts', async () => {
    const out = await preprocessImage(await phantomPng(32, 32), defaultPreprocessParams(64));
    expect(out.geometry).toMatchObject({ originalWidth: 32, originalHeight: 32 });
  });
});
