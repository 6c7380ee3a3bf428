import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectNotFoundError, ObjectStore } from '@btd/shared';
import { startTestS3, type TestS3 } from './helpers/index.js';

let s3: TestS3;
let store: ObjectStore;

beforeAll(async () => {
  s3 = await startTestS3();
  store = await s3.createBucket();
});

afterAll(async () => {
  await s3?.close();
});

describe('ObjectStore against s3rver', () => {
  it('creates its bucket idempotently', async () => {
    const fresh = new ObjectStore(s3.bucketOptions());
    await expect(fresh.ping()).rejects.toThrow();
    await fresh.ensureBucket();
    await fresh.ensureBucket();
    await expect(fresh.ping()).resolves.toBeUndefined();
    fresh.close();
    fresh.close();
  });

  it('creates its bucket once when several services start at the same moment', async () => {
    const options = s3.bucketOptions();
    const services = Array.from({ length: 4 }, () => new ObjectStore(options));
    await expect(Promise.all(services.map((service) => service.ensureBucket()))).resolves.toHaveLength(4);
    await expect(services[0]!.ping()).resolves.toBeUndefined();
    for (const service of services) service.close();
  });

  it('puts, heads, gets and overwrites objects with their content type', async () => {
    await store.put('a/one.png', new Uint8Array([1, 2, 3]), 'image/png');
    expect(await store.head('a/one.png')).toMatchObject({ key: 'a/one.png', size: 3, contentType: 'image/png' });
    expect([...(await store.get('a/one.png'))]).toEqual([1, 2, 3]);
    await store.putJson('a/one.png', { replaced: true });
    expect(await store.getJson('a/one.png')).toEqual({ replaced: true });
  });

  it('reports missing objects as such', async () => {
    await expect(store.get('missing/key')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await store.head('missing/key')).toBeNull();
    expect(await store.exists('missing/key')).toBe(false);
    await expect(store.delete('missing/key')).resolves.toBeUndefined();
  });

  it('lists by prefix across pages and deletes a prefix', async () => {
    const keys = Array.from({ length: 7 }, (_, i) => `paged/${i}`);
    await Promise.all(keys.map((key) => store.put(key, 'x', 'text/plain')));
    await store.put('pagedX/other', 'x', 'text/plain');
    const listed: string[] = [];
    for await (const item of store.list('paged/', 3)) listed.push(item.key);
    expect(listed.sort()).toEqual(keys.sort());
    expect(await store.deletePrefix('paged/')).toBe(7);
    expect(await store.listKeys('paged/')).toEqual([]);
    expect(await store.exists('pagedX/other')).toBe(true);
  });

  it('issues presigned URLs that work without credentials', async () => {
    const putUrl = await store.presignPut('presigned/upload.jpg', { contentType: 'image/jpeg', expiresInSeconds: 60 });
    const upload = await fetch(putUrl, { method: 'PUT', body: 'jpeg bytes', headers: { 'content-type': 'image/jpeg' } });
    expect(upload.status).toBe(200);
    expect(await store.head('presigned/upload.jpg')).toMatchObject({ size: 10, contentType: 'image/jpeg' });
    const download = await fetch(await store.presignGet('presigned/upload.jpg'));
    expect(await download.text()).toBe('jpeg bytes');
  });
});
