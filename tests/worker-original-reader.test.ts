import { describe, expect, it } from 'vitest';
import type { ObjectStore } from '@btd/shared';
import { createOriginalReader } from '../services/inference-worker/src/original-reader.js';
import { useTestBucket } from './helpers/index.js';

const bucket = useTestBucket();

/** The store, counting the reads that reach it. */
function counted(inner: ObjectStore): { store: ObjectStore; reads: string[] } {
  const reads: string[] = [];
  const wrapper = Object.create(inner) as ObjectStore;
  wrapper.get = async (key: string) => {
    reads.push(key);
    return inner.get(key);
  };
  return { store: wrapper, reads };
}

describe('original reader', () => {
  it('downloads a multi-frame original once for all its frames, concurrent ones included, and single-frame ones every time', async () => {
    const series = new Uint8Array(1000).fill(7);
    await bucket.store.put('originals/a/series', series, 'application/dicom');
    await bucket.store.put('originals/a/slice', new Uint8Array(10), 'image/jpeg');
    const { store: countingStore, reads } = counted(bucket.store);
    const reader = createOriginalReader(countingStore, 10_000);
    const frames = await Promise.all([0, 1, 2].map(async () => reader.get('originals/a/series', true)));
    frames.push(await reader.get('originals/a/series', true));
    expect(frames.every((bytes) => Buffer.from(bytes).equals(Buffer.from(series)))).toBe(true);
    await reader.get('originals/a/slice', false);
    await reader.get('originals/a/slice', false);
    expect(reads).toEqual(['originals/a/series', 'originals/a/slice', 'originals/a/slice']);
  });

  it('keeps no more than its byte limit, dropping the least recently used file', async () => {
    for (const name of ['one', 'two', 'three']) await bucket.store.put(`originals/b/${name}`, new Uint8Array(400), 'application/dicom');
    const { store: countingStore, reads } = counted(bucket.store);
    const reader = createOriginalReader(countingStore, 1000);
    for (const name of ['one', 'two', 'three', 'three', 'two', 'one']) await reader.get(`originals/b/${name}`, true);
    // Two of 400 bytes fit in 1000: reading "three" dropped "one", which is read again at the end.
    expect(reads).toEqual(['originals/b/one', 'originals/b/two', 'originals/b/three', 'originals/b/one']);
    const none = counted(bucket.store);
    const uncached = createOriginalReader(none.store, 0);
    for (let i = 0; i < 2; i++) await uncached.get('originals/b/one', true);
    expect(none.reads).toHaveLength(2);
  });
});
