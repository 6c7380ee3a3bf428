import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { BatchView, ErrorBody, SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { holdNextEnqueue, pendingStudy } from './api-killed-submission.js';
import type { TestClient } from './api-test-env.js';
import { waitFor } from './helpers/index.js';

const harness = useApiHarness();

const [first, second] = mriSlices('no', 2);

function submit(client: TestClient, bytes: Uint8Array, fields: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return call<SubmittedStudy & ErrorBody>(harness.env, client, 'POST', '/v1/studies', { body: studyForm([{ name: 'slice.jpg', bytes }], fields), headers });
}

async function jobCount(): Promise<number> {
  return harness.env.api.ctx.queues.inference.getJobCountByTypes('waiting', 'prioritized', 'active', 'completed', 'failed');
}

describe('Idempotency-Key', () => {
  it('returns the first response to a retry, without new work', async () => {
    const headers = { 'idempotency-key': randomUUID() };
    const original = await submit('alice', first!.bytes, {}, headers);
    const retry = await submit('alice', first!.bytes, {}, headers);
    expect(original.status).toBe(202);
    expect(retry.status).toBe(202);
    expect(retry.body).toEqual(original.body);
    expect(retry.headers.get('location')).toBe(original.headers.get('location'));
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(original.headers.get('idempotent-replayed')).toBeNull();
    expect(await jobCount()).toBe(1);
    expect(await harness.env.objectKeys()).toHaveLength(1);
  });

  it('creates one study when identical requests race', async () => {
    const headers = { 'idempotency-key': randomUUID() };
    const answers = await Promise.all(Array.from({ length: 6 }, () => submit('alice', first!.bytes, {}, headers)));
    expect(answers.map((answer) => answer.status)).toEqual(Array(6).fill(202));
    expect(new Set(answers.map((answer) => answer.body.studyId)).size).toBe(1);
    expect(answers.filter((answer) => answer.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
    expect(await jobCount()).toBe(1);
  });

  it('answers a study it stored and queued with success, and replays it, when remembering the response meets Redis errors', async () => {
    const redis = harness.env.api.ctx.redis;
    const set = redis.set.bind(redis) as (...args: unknown[]) => Promise<unknown>;
    let failures = 2;
    // The first two writes of the finished response fail, as a Redis blip would make them.
    const flaky = async (...args: unknown[]) => {
      if (failures > 0 && String(args[1]).includes('"state":"done"')) {
        failures -= 1;
        throw new Error('Connection is closed.');
      }
      return set(...args);
    };
    Object.assign(redis, { set: flaky });
    try {
      const headers = { 'idempotency-key': randomUUID() };
      const original = await submit('alice', first!.bytes, {}, headers);
      expect(original.status).toBe(202);
      expect(failures).toBe(0);
      const retry = await submit('alice', first!.bytes, {}, headers);
      expect([retry.status, retry.body.studyId, retry.headers.get('idempotent-replayed')]).toEqual([202, original.body.studyId, 'true']);
      expect(await jobCount()).toBe(1);
    } finally {
      Object.assign(redis, { set });
    }
  });

  it('refuses the same key for different content', async () => {
    const headers = { 'idempotency-key': randomUUID() };
    await submit('alice', first!.bytes, {}, headers);
    const reused = await submit('alice', second!.bytes, {}, headers);
    expect([reused.status, reused.body.code]).toEqual([422, 'idempotency_key_reused']);
    expect(await jobCount()).toBe(1);
  });

  it('keeps keys apart per client', async () => {
    const headers = { 'idempotency-key': randomUUID() };
    const alice = await submit('alice', first!.bytes, {}, headers);
    const bob = await submit('bob', first!.bytes, {}, headers);
    expect(bob.status).toBe(202);
    expect(bob.body.studyId).not.toBe(alice.body.studyId);
    expect(await jobCount()).toBe(2);
  });

  it('makes batch creation retry-safe too', async () => {
    const headers = { 'idempotency-key': randomUUID() };
    const created = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: { externalId: 'RUN-7' }, headers });
    const retried = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: { externalId: 'RUN-7' }, headers });
    expect(created.status).toBe(201);
    expect(retried.body.batchId).toBe(created.body.batchId);
    // The same fields in another order are the same request.
    const ordered = { 'idempotency-key': randomUUID() };
    const one = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: { externalId: 'RUN-8', priority: 'stat' }, headers: ordered });
    const other = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: { priority: 'stat', externalId: 'RUN-8' }, headers: ordered });
    expect([one.status, other.status]).toEqual([201, 201]);
    expect(other.body.batchId).toBe(one.body.batchId);
  });

  it('replays a batch whose API died before remembering its response, instead of creating a second', async () => {
    const { ctx } = harness.env.api;
    const idempotencyKey = randomUUID();
    // The response is never remembered, as when the process dies right after storing the batch.
    const complete = ctx.idempotency.complete.bind(ctx.idempotency);
    ctx.idempotency.complete = () => Promise.reject(new Error('Connection is closed.'));
    const created = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: { externalId: 'RUN-9' }, headers: { 'idempotency-key': idempotencyKey } });
    ctx.idempotency.complete = complete;
    expect(created.status).toBe(201);
    // By the client's retry, two minutes on, a claim left pending has lapsed.
    const key = ctx.keys.idempotency('alice', idempotencyKey);
    if ((JSON.parse((await harness.env.redis.get(key)) ?? '{}') as { state?: string }).state === 'pending') await harness.env.redis.del(key);

    const retried = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: { externalId: 'RUN-9' }, headers: { 'idempotency-key': idempotencyKey } });
    expect([retried.status, retried.body.batchId, retried.headers.get('idempotent-replayed')]).toEqual([201, created.body.batchId, 'true']);
    expect(await harness.env.redis.zcard(ctx.keys.clientBatches('alice'))).toBe(1);
  });
});

describe('externalId', () => {
  it('returns the original study when a study is resubmitted under its external id', async () => {
    const original = await submit('alice', first!.bytes, { externalId: 'ACC-42' });
    const again = await submit('alice', first!.bytes, { externalId: 'ACC-42' });
    expect(again.status).toBe(202);
    expect(again.body.studyId).toBe(original.body.studyId);
    expect(again.body.images).toEqual(original.body.images);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await jobCount()).toBe(1);
  });

  it('creates one study when resubmissions race', async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, () => submit('alice', first!.bytes, { externalId: 'ACC-43' })));
    expect(new Set(answers.map((answer) => answer.body.studyId)).size).toBe(1);
    expect(await jobCount()).toBe(1);
    expect(await harness.env.objectKeys()).toHaveLength(1);
  });

  it('refuses an external id reused for different images, naming the existing study', async () => {
    const original = await submit('alice', first!.bytes, { externalId: 'ACC-44' });
    const clash = await submit('alice', second!.bytes, { externalId: 'ACC-44' });
    expect([clash.status, clash.body.code]).toEqual([409, 'external_id_conflict']);
    expect(clash.body.message).toContain(original.body.studyId);
    expect(await harness.env.objectKeys()).toHaveLength(1);
  });

  it('says which fields differ when the same images come under an external id with other fields', async () => {
    const original = await submit('alice', first!.bytes, { externalId: 'ACC-47' });
    const named = `externalId already names study ${original.body.studyId}, submitted with`;
    const stat = await submit('alice', first!.bytes, { externalId: 'ACC-47', priority: 'stat' });
    expect([stat.status, stat.body.code, stat.body.message]).toEqual([409, 'external_id_conflict', `${named} the same images but a different priority`]);
    const hooked = await submit('alice', first!.bytes, { externalId: 'ACC-47', callbackUrl: 'http://127.0.0.1:9/hooks' });
    expect([hooked.status, hooked.body.message]).toEqual([409, `${named} the same images but a different callbackUrl`]);
    const routine = await submit('alice', first!.bytes, { externalId: 'ACC-47', priority: 'routine' });
    expect([routine.status, routine.body.message]).toEqual([409, `${named} the same images but its priority left to the default, which this request gives`]);
    const other = await submit('alice', second!.bytes, { externalId: 'ACC-47', priority: 'stat' });
    expect([other.status, other.body.message]).toEqual([409, `${named} different images and a different priority`]);
    expect(await jobCount()).toBe(1);
  });

  it('makes a resubmission wait for the first submission still being stored, and stores it afresh when the first fails', async () => {
    const { env } = harness;
    const held = holdNextEnqueue(env);
    const failing = submit('alice', first!.bytes, { externalId: 'ACC-48' });
    let waiting: ReturnType<typeof submit> | undefined;
    let failedId: string;
    try {
      failedId = await pendingStudy(env);
      waiting = submit('alice', first!.bytes, { externalId: 'ACC-48' }, { 'idempotency-key': randomUUID() });
      // The first request is still at work (its jobs not enqueued), and may yet remove its study.
      expect(await Promise.race([waiting.then(() => 'answered'), sleep(1_000).then(() => 'waiting')])).toBe('waiting');
    } finally {
      held.fail();
    }
    expect((await failing).status).toBeGreaterThanOrEqual(500);
    const answer = await waiting;
    expect([answer.status, answer.headers.get('idempotent-replayed')]).toEqual([202, null]);
    expect(answer.body.studyId).not.toBe(failedId);
    expect((await call(env, 'alice', 'GET', `/v1/studies/${answer.body.studyId}`)).status).toBe(200);
    expect(await env.api.ctx.externalIds.lookup('alice', 'ACC-48')).toBe(answer.body.studyId);
  });

  it('frees the external id of a failed submission with its records, before its originals are removed', async () => {
    const { env } = harness;
    const store = env.api.ctx.objectStore;
    const put = store.put.bind(store);
    const deletePrefix = store.deletePrefix.bind(store);
    let removing = false;
    let letRemovalEnd = () => {};
    const removalMayEnd = new Promise<void>((resolve) => (letRemovalEnd = resolve));
    // The original's upload fails beside the records' write; the undo then stops at removing the
    // originals, as an API that dies there does.
    store.put = () => Promise.reject(new Error('upload refused'));
    store.deletePrefix = async (...args: Parameters<typeof deletePrefix>) => {
      removing = true;
      await removalMayEnd;
      return deletePrefix(...args);
    };
    const failing = submit('alice', first!.bytes, { externalId: 'ACC-49' });
    try {
      await waitFor(() => removing, { what: 'the undo to remove the originals' });
      expect(await env.api.ctx.externalIds.lookup('alice', 'ACC-49')).toBeUndefined();
      store.put = put;
      const again = await submit('alice', first!.bytes, { externalId: 'ACC-49' });
      expect([again.status, again.headers.get('idempotent-replayed')]).toEqual([202, null]);
    } finally {
      store.put = put;
      letRemovalEnd();
    }
    expect((await failing).status).toBeGreaterThanOrEqual(500);
    store.deletePrefix = deletePrefix;
  });

  it('takes over an external id whose submission died half-way, and keeps a finished claim for good', async () => {
    const claimKey = harness.env.api.ctx.keys.externalId('alice', 'ACC-46');
    await harness.env.redis.set(claimKey, 'stu_died_half_way', 'PX', 400);
    const submitted = await submit('alice', first!.bytes, { externalId: 'ACC-46' });
    expect(submitted.status).toBe(202);
    expect(submitted.body.studyId).not.toBe('stu_died_half_way');
    expect(await harness.env.redis.get(claimKey)).toBe(submitted.body.studyId);
    expect(await harness.env.redis.ttl(claimKey)).toBe(-1);
  });

  it('lists no study for an external id whose submission has not stored its study yet', async () => {
    const { ctx } = harness.env.api;
    await harness.env.redis.set(ctx.keys.externalId('alice', 'PENDING-1'), 'stu_still_storing', 'EX', 60);
    const listed = await call<{ items: unknown[]; total: number }>(harness.env, 'alice', 'GET', '/v1/studies?externalId=PENDING-1');
    expect([listed.status, listed.body.items.length, listed.body.total]).toEqual([200, 0, 0]);
  });

  it('finds a study by its external id', async () => {
    const original = await submit('alice', first!.bytes, { externalId: 'ACC-45' });
    const found = await call<{ items: { studyId: string }[] }>(harness.env, 'alice', 'GET', '/v1/studies?externalId=ACC-45');
    expect(found.body.items.map((item) => item.studyId)).toEqual([original.body.studyId]);
    const other = await call<{ items: unknown[] }>(harness.env, 'bob', 'GET', '/v1/studies?externalId=ACC-45');
    expect(other.body.items).toEqual([]);
  });
});
