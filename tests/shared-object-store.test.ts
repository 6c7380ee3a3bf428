import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isStoreUnavailable, ObjectNotFoundError, ObjectsNotDeletedError, ObjectStore } from '@btd/shared';
import { startDeleteRefusingProxy, useTestBucket } from './helpers/index.js';

const bucket = useTestBucket();

/** Runs `test` with a store whose endpoint accepts connections and never answers. */
async function withSilentEndpoint(timeoutMs: number, test: (store: ObjectStore, sockets: Socket[]) => Promise<void>): Promise<void> {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as AddressInfo;
  const store = new ObjectStore({ ...bucket.s3.bucketOptions(), s3Endpoint: `http://127.0.0.1:${port}`, s3TimeoutMs: timeoutMs });
  try {
    await test(store, sockets);
  } finally {
    store.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
}

describe('ObjectStore against s3rver', () => {
  it('creates its bucket idempotently', async () => {
    const fresh = new ObjectStore(bucket.s3.bucketOptions());
    await expect(fresh.ping()).rejects.toThrow();
    await fresh.ensureBucket();
    await fresh.ensureBucket();
    await expect(fresh.ping()).resolves.toBeUndefined();
    fresh.close();
    fresh.close();
  });

  it('fails a request to an endpoint that accepts the connection and never answers, instead of waiting for ever', async () => {
    await withSilentEndpoint(300, async (store, sockets) => {
      await expect(store.get('any/key')).rejects.toThrow(/timed out/i);
      expect(sockets.length).toBeGreaterThan(0);
    });
  });

  it('cancels a read when its signal is aborted, without waiting for the request timeout', async () => {
    await withSilentEndpoint(20_000, async (store) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      // An abort, not the request's own time-out (whose error says "timed out"), ends it.
      await expect(store.get('any/key', { signal: controller.signal })).rejects.toThrow(/abort/i);
    });
  });

  it('creates its bucket once when several services start at the same moment', async () => {
    const options = bucket.s3.bucketOptions();
    const services = Array.from({ length: 4 }, () => new ObjectStore(options));
    await expect(Promise.all(services.map((service) => service.ensureBucket()))).resolves.toHaveLength(4);
    await expect(services[0]!.ping()).resolves.toBeUndefined();
    for (const service of services) service.close();
  });

  it('puts, heads, gets and overwrites objects with their content type', async () => {
    await bucket.store.put('a/one.png', new Uint8Array([1, 2, 3]), 'image/png');
    expect(await bucket.store.head('a/one.png')).toMatchObject({ key: 'a/one.png', size: 3, contentType: 'image/png' });
    expect([...(await bucket.store.get('a/one.png'))]).toEqual([1, 2, 3]);
    await bucket.store.putJson('a/one.png', { replaced: true });
    expect(await bucket.store.getJson('a/one.png')).toEqual({ replaced: true });
  });

  it('serves each GET during an overwrite of its key the whole old or the whole new object', async () => {
    // As the registry's pointer and statuses are read while a promotion overwrites them. A GET whose
    // body falls short of its length would wait for the rest: the reader gives up after 2 s.
    const reader = new ObjectStore({ ...bucket.s3.bucketOptions(), s3Bucket: bucket.store.bucket, s3TimeoutMs: 2_000 });
    const read = () => reader.get('overwritten.json').then((body) => body.toString('utf8'), (error: Error) => `failed: ${error.message}`);
    const versions = ['a', 'b'].map((fill) => JSON.stringify({ fill, pad: fill.repeat(128 << 10) }));
    await bucket.store.put('overwritten.json', versions[0]!, 'application/json');
    const odd: string[] = [];
    try {
      for (let i = 1; i <= 100 && odd.length === 0; i++) {
        const [, ...bodies] = await Promise.all([bucket.store.put('overwritten.json', versions[i % 2]!, 'application/json'), read(), read()]);
        for (const body of bodies) if (!versions.includes(body)) odd.push(body.startsWith('failed: ') ? body : `${body.length} bytes`);
      }
    } finally {
      reader.close();
    }
    expect(odd).toEqual([]);
  });

  it('reports missing objects as such', async () => {
    await expect(bucket.store.get('missing/key')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await bucket.store.head('missing/key')).toBeNull();
    expect(await bucket.store.exists('missing/key')).toBe(false);
    await expect(bucket.store.delete('missing/key')).resolves.toBeUndefined();
  });

  it('lists by prefix across pages and deletes a prefix', async () => {
    const keys = Array.from({ length: 7 }, (_, i) => `paged/${i}`);
    await Promise.all(keys.map((key) => bucket.store.put(key, 'x', 'text/plain')));
    await bucket.store.put('pagedX/other', 'x', 'text/plain');
    const listed: string[] = [];
    for await (const item of bucket.store.list('paged/', 3)) listed.push(item.key);
    expect(listed.sort()).toEqual(keys.sort());
    expect(await bucket.store.deletePrefix('paged/')).toBe(7);
    expect(await bucket.store.listKeys('paged/')).toEqual([]);
    expect(await bucket.store.exists('pagedX/other')).toBe(true);
  });

  it('issues presigned URLs that work without credentials', async () => {
    const putUrl = await bucket.store.presignPut('presigned/upload.jpg', { contentType: 'image/jpeg', expiresInSeconds: 60 });
    const upload = await fetch(putUrl, { method: 'PUT', body: 'jpeg bytes', headers: { 'content-type': 'image/jpeg' } });
    expect(upload.status).toBe(200);
    expect(await bucket.store.head('presigned/upload.jpg')).toMatchObject({ size: 10, contentType: 'image/jpeg' });
    const download = await fetch(await bucket.store.presignGet('presigned/upload.jpg'));
    expect(await download.text()).toBe('jpeg bytes');
  });
});

describe('ObjectStore.deletePrefix when S3 refuses some keys in its answer', () => {
  it('throws naming the keys and codes S3 listed as not deleted, instead of answering as if all were', async () => {
    const proxy = await startDeleteRefusingProxy(bucket.s3.endpoint);
    const store = new ObjectStore({ ...bucket.s3.bucketOptions(), s3Endpoint: proxy.endpoint, s3Bucket: bucket.store.bucket });
    try {
      for (const name of ['a', 'b', 'c']) await store.put(`refused/${name}`, name, 'text/plain');
      proxy.refuse([{ key: 'refused/b' }]);
      const failed = await store.deletePrefix('refused/').catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(ObjectsNotDeletedError);
      expect((failed as Error).message).toMatch(/refused\/b \(AccessDenied\)/);
      expect((failed as ObjectsNotDeletedError).failures).toEqual([{ key: 'refused/b', code: 'AccessDenied', message: 'AccessDenied' }]);
      expect(isStoreUnavailable(failed)).toBe(false);

      proxy.refuse([]);
      await store.put('refused/d', 'd', 'text/plain');
      expect(await store.deletePrefix('refused/')).toBeGreaterThan(0);
      expect(await store.listKeys('refused/')).toEqual([]);
    } finally {
      store.close();
      await proxy.close();
    }
  });

  it('counts keys refused because the store was busy (InternalError, SlowDown) as an outage', async () => {
    const proxy = await startDeleteRefusingProxy(bucket.s3.endpoint);
    const store = new ObjectStore({ ...bucket.s3.bucketOptions(), s3Endpoint: proxy.endpoint, s3Bucket: bucket.store.bucket });
    try {
      for (const name of ['a', 'b']) await store.put(`busy/${name}`, name, 'text/plain');
      proxy.refuse([{ key: 'busy/a', code: 'SlowDown' }, { key: 'busy/b', code: 'InternalError' }]);
      const failed = await store.deletePrefix('busy/').catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(ObjectsNotDeletedError);
      expect((failed as Error).message).toMatch(/busy\/a \(SlowDown\), busy\/b \(InternalError\)/);
      expect(isStoreUnavailable(failed)).toBe(true);
    } finally {
      store.close();
      await proxy.close();
    }
  });
});
