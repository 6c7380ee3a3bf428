import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import S3Object from 's3rver/lib/models/object.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AtomicFilesystemStore } from './atomic-filesystem-store.js';

const BUCKET = 'b';
let dir: string;
let store: AtomicFilesystemStore;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'btd-atomic-store-'));
  store = new AtomicFilesystemStore(dir);
  await store.putBucket(BUCKET);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Stores `bytes` under `key` as a PUT does: the body arrives as a stream (here in one chunk). */
const put = (key: string, bytes: Buffer) =>
  store.putObject(new S3Object(BUCKET, key, Readable.from([bytes]), { 'content-type': 'application/octet-stream' }));

describe('AtomicFilesystemStore', () => {
  it('counts a PUT as stored only once every byte is in the object file', async () => {
    // One large chunk: s3rver's own store counted it stored while the write was still going on.
    for (let i = 0; i < 3; i++) {
      const bytes = Buffer.alloc(32 << 20, i + 1);
      await expect(put(`large/${i}`, bytes)).resolves.toMatchObject({ size: bytes.length });
      expect((await stat(store.getResourcePath(BUCKET, `large/${i}`, 'object'))).size).toBe(bytes.length);
    }
  });

  it('serves a GET the whole version it opened, even when the object is overwritten before the body is read', async () => {
    const old = Buffer.alloc(1 << 20, 'o');
    await put('record.json', old);
    const reading = await store.getObject(BUCKET, 'record.json');
    await put('record.json', Buffer.from('new'));
    expect(reading?.size).toBe(old.length);
    expect((await buffer(reading!.content as Readable)).equals(old)).toBe(true);
    const fresh = await store.getObject(BUCKET, 'record.json');
    expect((await buffer(fresh!.content as Readable)).toString()).toBe('new');
  });

  it('keeps its writes in progress out of the bucket and of the bucket list', async () => {
    await put('a/b/c.txt', Buffer.from('c'));
    expect((await store.listBuckets()).map((bucket) => (bucket as { name: string }).name)).toEqual([BUCKET]);
    expect(await readdir(path.join(dir, '.incoming'))).toEqual([]);
    expect((await store.listObjects(BUCKET, { prefix: 'a/' })).objects.map((object) => object.key)).toEqual(['a/b/c.txt']);
  });

  it('serves byte ranges of the opened file, and none past its end', async () => {
    await put('range.bin', Buffer.from('0123456789'));
    const part = await store.getObject(BUCKET, 'range.bin', { start: 2, end: 5 });
    expect(part?.range).toEqual({ start: 2, end: 5 });
    expect((await buffer(part!.content as Readable)).toString()).toBe('2345');
    const beyond = await store.getObject(BUCKET, 'range.bin', { start: 20 });
    expect(beyond?.content).toBeNull();
    expect(await store.getObject(BUCKET, 'missing')).toBeNull();
  });
});
