import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mirrorPrefix } from '../services/trainer/src/dataset-source.js';
import { useTestBucket } from './helpers/index.js';

const bucket = useTestBucket();
let cacheDir: string;
let prefix: string;

beforeEach(async () => {
  cacheDir = await mkdtemp(path.join(tmpdir(), 'btd-mirror-'));
  prefix = `datasets/${path.basename(cacheDir)}/`;
});

afterEach(async () => {
  await bucket.store.deletePrefix(prefix);
  await rm(cacheDir, { recursive: true, force: true });
});

/** Counts the downloads of keys under the prefix while `run` runs. */
async function countingDownloads<T>(run: () => Promise<T>): Promise<{ result: T; downloads: string[] }> {
  const store = bucket.store;
  const get = store.get.bind(store);
  const downloads: string[] = [];
  store.get = async (key: string) => {
    if (key.startsWith(prefix)) downloads.push(key.slice(prefix.length));
    return get(key);
  };
  try {
    return { result: await run(), downloads };
  } finally {
    store.get = get;
  }
}

describe('mirroring an S3 dataset', () => {
  it('downloads again a file replaced by other bytes of the same size, and only that file', async () => {
    const first = Buffer.alloc(1024, 0x11);
    const corrected = Buffer.alloc(1024, 0x22);
    await bucket.store.put(`${prefix}yes/slice.dcm`, first, 'application/dicom');
    await bucket.store.put(`${prefix}no/other.dcm`, Buffer.alloc(512, 0x33), 'application/dicom');
    const mirror = await mirrorPrefix(bucket.store, prefix, cacheDir);
    expect(await readFile(path.join(mirror, 'yes', 'slice.dcm'))).toEqual(first);

    // Nothing changed: nothing is downloaded.
    expect((await countingDownloads(() => mirrorPrefix(bucket.store, prefix, cacheDir))).downloads).toEqual([]);

    await bucket.store.put(`${prefix}yes/slice.dcm`, corrected, 'application/dicom');
    const again = await countingDownloads(() => mirrorPrefix(bucket.store, prefix, cacheDir));
    expect(again.result).toBe(mirror);
    expect(again.downloads).toEqual(['yes/slice.dcm']);
    expect(await readFile(path.join(mirror, 'yes', 'slice.dcm'))).toEqual(corrected);
  });
});
