import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { verifyWebhookSignature, type BatchView, type ErrorBody, type SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { useApiHarness } from './api-harness.js';

const harness = useApiHarness();

function getBatch(batchId: string, query = '') {
  return call<BatchView>(harness.env, 'alice', 'GET', `/v1/batches/${batchId}${query}`);
}

async function waitForBatch(batchId: string, until: (batch: BatchView) => boolean, timeoutMs = 60_000): Promise<BatchView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = (await getBatch(batchId)).body;
    if (until(batch)) return batch;
    if (Date.now() > deadline) throw new Error(`batch still ${batch.state}: ${JSON.stringify(batch.counts)}`);
    await sleep(100);
  }
}

describe('batches', () => {
  it('takes studies in chunks, counts them per state, pages them and announces completion once', async () => {
    const receiver = await harness.startReceiver();
    const created = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', {
      body: { externalId: 'NIGHTLY-1', priority: 'routine', callbackUrl: `${receiver.url}/batch` },
    });
    expect(created.status).toBe(201);
    const { batchId } = created.body;
    expect(created.headers.get('location')).toBe(`/v1/batches/${batchId}`);

    const slices = mriSlices('no', 6);
    const chunks = slices.map((slice, i) =>
      call<SubmittedStudy>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, {
        body: studyForm([{ name: slice.name, bytes: slice.bytes }], { externalId: `ACC-${i}` }),
      }),
    );
    const submitted = await Promise.all(chunks);
    expect(submitted.map((answer) => answer.status)).toEqual(Array(6).fill(202));
    expect(submitted.every((answer) => answer.body.batchId === batchId)).toBe(true);

    const queued = (await getBatch(batchId)).body;
    expect(queued.state).toBe('open');
    expect(queued.counts).toEqual({ total: 6, queued: 6, processing: 0, done: 0, failed: 0 });

    const firstPage = (await getBatch(batchId, '?limit=4')).body;
    expect(firstPage.studies.items).toHaveLength(4);
    const secondPage = (await getBatch(batchId, `?${firstPage.studies.next}`)).body;
    expect(secondPage.studies.items).toHaveLength(2);
    expect(secondPage.studies.next).toBeUndefined();
    const paged = [...firstPage.studies.items, ...secondPage.studies.items].map((item) => item.studyId).sort();
    expect(paged).toEqual(submitted.map((answer) => answer.body.studyId).sort());

    const closed = await call<BatchView>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/close`);
    expect(closed.body.state).toBe('closed');
    const late = await call<ErrorBody>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, {
      body: studyForm([{ name: 'late.jpg', bytes: slices[0]!.bytes }]),
    });
    expect([late.status, late.body.code]).toEqual([409, 'batch_not_open']);

    await harness.startWorker();
    const done = await waitForBatch(batchId, (batch) => batch.state === 'done');
    expect(done.counts).toEqual({ total: 6, queued: 0, processing: 0, done: 6, failed: 0 });
    expect(done.studies.items.every((item) => item.state === 'done')).toBe(true);

    const [hook] = await receiver.waitFor(1, '/batch');
    const { secret } = (await call<{ secret: string }>(harness.env, 'alice', 'GET', '/v1/webhooks/secret')).body;
    expect(verifyWebhookSignature(secret, String(hook!.headers['x-btd-signature']), hook!.body)).toBe(true);
    const body = JSON.parse(hook!.body) as { event: string; batch: BatchView };
    expect(body.event).toBe('batch.completed');
    expect(body.batch).toMatchObject({ batchId, state: 'done', externalId: 'NIGHTLY-1', counts: { total: 6, done: 6 } });
    await sleep(300);
    expect(receiver.received.filter((received) => received.path === '/batch')).toHaveLength(1);
  });

  it('completes a batch closed while a chunk was being stored, once that chunk fails and is taken back', async () => {
    const { ctx } = harness.env.api;
    const [a, c] = mriSlices('no', 2);
    const batchId = (await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: {} })).body.batchId;
    const first = await call<SubmittedStudy>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, { body: studyForm([{ name: 'a.jpg', bytes: a!.bytes }]) });
    const studyA = (await ctx.studies.get(first.body.studyId))!;
    await ctx.studies.applyResult(studyA, { kind: 'failed', studyId: studyA.id, imageId: studyA.imageIds[0]!, clientId: 'alice', finishedAt: new Date().toISOString(), reason: 'unreadable' });
    // The next chunk's original is slow to store, and its jobs then cannot be queued.
    const { objectStore } = ctx;
    const inference = ctx.queues.inference;
    const put = objectStore.put.bind(objectStore);
    const addBulk = inference.addBulk.bind(inference);
    Object.assign(objectStore, { put: async (...args: Parameters<typeof put>) => (await sleep(600), put(...args)) });
    Object.assign(inference, { addBulk: () => Promise.reject(new Error('Connection is closed.')) });
    try {
      const chunk = call<ErrorBody>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, { body: studyForm([{ name: 'c.jpg', bytes: c!.bytes }]) });
      await sleep(300);
      const closed = await call<BatchView>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/close`);
      expect([closed.body.state, closed.body.counts.total]).toEqual(['closed', 2]);
      expect((await chunk).status).toBe(503);
    } finally {
      Object.assign(objectStore, { put });
      Object.assign(inference, { addBulk });
    }
    const batch = (await getBatch(batchId)).body;
    expect([batch.state, batch.counts.total, batch.counts.failed]).toEqual(['done', 1, 1]);
  });

  it('answers a retried chunk with the study it stored, by its Idempotency-Key or its externalId, even once the batch is closed, and refuses new ones', async () => {
    const [a, b, c] = mriSlices('yes', 3);
    const batchId = (await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: {} })).body.batchId;
    const send = (bytes: Uint8Array, headers: Record<string, string>, fields: Record<string, string> = {}) =>
      call<SubmittedStudy & ErrorBody>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, { body: studyForm([{ name: 'a.jpg', bytes }], fields), headers });
    const byKey = await send(a!.bytes, { 'idempotency-key': 'chunk-1' });
    const byExternalId = await send(b!.bytes, {}, { externalId: 'ACC-1' });
    expect([byKey.status, byExternalId.status]).toEqual([202, 202]);
    await call(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/close`);
    const stored = await harness.env.objectKeys();

    // Their answers were lost (a dropped connection) and the client retries after the batch was closed.
    const retried = [await send(a!.bytes, { 'idempotency-key': 'chunk-1' }), await send(b!.bytes, {}, { externalId: 'ACC-1' })];
    expect(retried.map((answer) => [answer.status, answer.body.studyId, answer.headers.get('idempotent-replayed')])).toEqual([
      [202, byKey.body.studyId, 'true'],
      [202, byExternalId.body.studyId, 'true'],
    ]);
    for (const [headers, fields] of [[{}, {}], [{ 'idempotency-key': 'chunk-2' }, {}], [{}, { externalId: 'ACC-2' }]] as const) {
      const refused = await send(c!.bytes, headers, fields);
      expect([refused.status, refused.body.code]).toEqual([409, 'batch_not_open']);
    }
    expect(await harness.env.objectKeys()).toEqual(stored);
    expect((await getBatch(batchId)).body.counts.total).toBe(2);
  });

  it('lists its studies at its links.studies, page by page as under studies in its view', async () => {
    const { batchId, links } = (await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: {} })).body;
    const submitted = await Promise.all(
      mriSlices('yes', 3).map(async (slice) => {
        const form = studyForm([{ name: slice.name, bytes: slice.bytes }]);
        return (await call<SubmittedStudy>(harness.env, 'alice', 'POST', links.studies, { body: form })).body.studyId;
      }),
    );
    const first = await call<BatchView['studies']>(harness.env, 'alice', 'GET', `${links.studies}?limit=2`);
    expect([first.status, first.body.items.length]).toEqual([200, 2]);
    expect(first.body.items).toEqual((await getBatch(batchId, '?limit=2')).body.studies.items);
    const second = await call<BatchView['studies']>(harness.env, 'alice', 'GET', `${links.studies}?${first.body.next}`);
    expect([second.body.items.length, second.body.next]).toEqual([1, undefined]);
    expect([...first.body.items, ...second.body.items].map((item) => item.studyId).sort()).toEqual(submitted.sort());
    expect((await call(harness.env, 'bob', 'GET', links.studies)).status).toBe(404);
  });

  it('reads the page at its links.studies without the batch webhook\'s delivery, which its view reads', async () => {
    const receiver = await harness.startReceiver();
    const { batchId, links } = (await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl: `${receiver.url}/batch` } })).body;
    const deliveryKey = `${harness.env.prefix}:api:delivery:batch-${batchId}`;
    const monitor = await harness.env.redis.monitor();
    // ioredis marks the connection as monitoring a tick after MONITOR's OK: a command Redis reports in
    // the same packet is taken for a reply no one awaits and emitted as this error. It precedes the measurement.
    const otherErrors: Error[] = [];
    monitor.on('error', (error: Error) => {
      if (!error.message.startsWith('Command queue state error')) otherErrors.push(error);
    });
    try {
      /** The Redis commands `request` sends that name the batch's delivery record; MONITOR lists commands in the order Redis runs them. */
      const deliveryReads = async (request: () => Promise<unknown>): Promise<number> => {
        const marker = `${harness.env.prefix}:marker:${Math.random()}`;
        let reads = 0;
        let seeMarker!: () => void;
        const markerSeen = new Promise<void>((resolve) => (seeMarker = resolve));
        const onCommand = (_time: string, args: string[]) => {
          if (args.includes(deliveryKey)) reads += 1;
          if (args.includes(marker)) seeMarker();
        };
        monitor.on('monitor', onCommand);
        await request();
        await harness.env.redis.get(marker);
        await markerSeen;
        monitor.off('monitor', onCommand);
        return reads;
      };
      expect(await deliveryReads(() => getBatch(batchId))).toBeGreaterThan(0);
      expect(await deliveryReads(() => call(harness.env, 'alice', 'GET', links.studies))).toBe(0);
      expect(otherErrors).toEqual([]);
    } finally {
      monitor.disconnect();
    }
  });

  it('completes an empty batch when it is closed', async () => {
    const created = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: {} });
    const closed = await call<BatchView>(harness.env, 'alice', 'POST', `/v1/batches/${created.body.batchId}/close`);
    expect(closed.body.state).toBe('done');
    expect(closed.body.counts.total).toBe(0);
  });

  it('refuses unknown fields and bad values in the batch body', async () => {
    const unknown = await call<ErrorBody>(harness.env, 'alice', 'POST', '/v1/batches', { body: { size: 100 } });
    expect([unknown.status, unknown.body.code]).toEqual([400, 'invalid_request']);
    expect(unknown.body.message).toContain('size');
    const priority = await call<ErrorBody>(harness.env, 'alice', 'POST', '/v1/batches', { body: { priority: 'urgent' } });
    expect(priority.body.message).toContain('stat, routine');
  });
});
