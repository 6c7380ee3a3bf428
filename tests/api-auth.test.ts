import { describe, expect, it } from 'vitest';
import type { BatchView, ErrorBody, SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { useApiHarness } from './api-harness.js';

const harness = useApiHarness();

const [slice] = mriSlices('yes', 1);

describe('API keys', () => {
  it('refuses /v1 requests without a key or with an unknown one, before reading the upload', async () => {
    const form = () => studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]);
    const missing = await call<ErrorBody>(harness.env, null, 'POST', '/v1/studies', { body: form() });
    expect([missing.status, missing.body.code]).toEqual([401, 'unauthorized']);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await call<ErrorBody>(harness.env, null, 'GET', '/v1/studies', { headers: { authorization: 'Bearer not-a-real-key-at-all' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="btd"');
    const basic = await call<ErrorBody>(harness.env, null, 'GET', '/v1/studies', { headers: { authorization: `Basic ${harness.env.keys.alice}` } });
    expect(basic.status).toBe(401);
    expect(await harness.env.objectKeys()).toEqual([]);
  });

  it('sends the WWW-Authenticate challenge with 401 answers only, not with answers to a known key', async () => {
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]) });
    const listed = await call(harness.env, 'alice', 'GET', '/v1/studies');
    const unknown = await call<ErrorBody>(harness.env, 'alice', 'GET', '/v1/studies/stu_00000000000000000000');
    const forbidden = await call<ErrorBody>(harness.env, 'alice', 'GET', '/v1/admin/queues');
    expect([submitted, listed, unknown, forbidden].map((answer) => answer.status)).toEqual([202, 200, 404, 403]);
    for (const answer of [submitted, listed, unknown, forbidden]) expect(answer.headers.get('www-authenticate'), String(answer.status)).toBeNull();
  });

  it('refuses a /v1 route reached through a percent-encoded path as it refuses the plain one', async () => {
    for (const path of ['/v1/models', '/%761/models', '/v%31/models', '/%76%31/trainings', '/%761/models/tumor-binary/versions']) {
      const response = await call<ErrorBody>(harness.env, null, 'GET', path);
      expect([response.status, response.body.code], path).toEqual([401, 'unauthorized']);
    }
  });

  it('leaves health, docs and the upload page open', async () => {
    for (const path of ['/healthz', '/readyz', '/docs/json', '/']) {
      expect((await call(harness.env, null, 'GET', path)).status, path).toBe(200);
    }
  });

  it('keeps admin routes for admin clients', async () => {
    expect((await call<ErrorBody>(harness.env, 'alice', 'GET', '/v1/admin/queues')).status).toBe(403);
    const training = { task: 'tumor-binary', dataset: { kind: 'local', path: '/data/br35h' }, hyperParameters: { epochs: 2 } };
    expect((await call(harness.env, 'ops', 'POST', '/v1/trainings', { body: training })).status).toBe(202);
    const admin = await call<{ queues: { name: string; counts: Record<string, number> }[] }>(harness.env, 'ops', 'GET', '/v1/admin/queues');
    expect(admin.status).toBe(200);
    expect(admin.body.queues.map((queue) => queue.name).sort()).toEqual(['inference', 'results', 'training', 'webhooks']);
    // The training queue is the one the route fills, and the metrics watch it too.
    expect(admin.body.queues.find((queue) => queue.name === 'training')?.counts).toMatchObject({ waiting: 1 });
    const metrics = await call<string>(harness.env, null, 'GET', '/metrics');
    expect(metrics.body).toContain('btd_queue_jobs{queue="training",state="waiting"} 1');
    expect(metrics.body).toContain('btd_queue_workers{queue="training"} 0');
  });
});

describe('isolation between clients', () => {
  it("answers 404 for another client's study, overlay and batch, and lists only one's own", async () => {
    const study = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]),
    });
    const batch = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: {} });
    const { studyId, images } = study.body;

    expect((await call(harness.env, 'alice', 'GET', `/v1/studies/${studyId}`)).status).toBe(200);
    const foreign = await call<ErrorBody>(harness.env, 'bob', 'GET', `/v1/studies/${studyId}`);
    expect([foreign.status, foreign.body.code]).toEqual([404, 'not_found']);
    const unknown = await call<ErrorBody>(harness.env, 'bob', 'GET', '/v1/studies/stu_00000000000000000000');
    expect(foreign.body.message.replace(studyId, 'X')).toBe(unknown.body.message.replace('stu_00000000000000000000', 'X'));
    expect((await call(harness.env, 'bob', 'GET', `/v1/studies/${studyId}/images/${images[0]!.imageId}/overlay.png`)).status).toBe(404);
    expect((await call(harness.env, 'bob', 'GET', `/v1/batches/${batch.body.batchId}`)).status).toBe(404);
    const addToForeign = await call(harness.env, 'bob', 'POST', `/v1/batches/${batch.body.batchId}/studies`, {
      body: studyForm([{ name: 'b.jpg', bytes: slice!.bytes }]),
    });
    expect(addToForeign.status).toBe(404);
    expect((await call(harness.env, 'bob', 'POST', `/v1/batches/${batch.body.batchId}/close`)).status).toBe(404);

    const aliceList = await call<{ items: { studyId: string }[]; total: number }>(harness.env, 'alice', 'GET', '/v1/studies');
    const bobList = await call<{ items: unknown[]; total: number }>(harness.env, 'bob', 'GET', '/v1/studies');
    expect(aliceList.body.items.map((item) => item.studyId)).toEqual([studyId]);
    expect([bobList.body.items, bobList.body.total]).toEqual([[], 0]);
  });
});

describe('OpenAPI document', () => {
  it('describes the routes with their schemas and bearer security', async () => {
    const doc = await call<{ paths: Record<string, Record<string, { security?: unknown[] }>> }>(harness.env, null, 'GET', '/docs/json');
    for (const path of ['/v1/studies', '/v1/studies/{id}', '/v1/batches', '/v1/batches/{id}', '/v1/batches/{id}/studies', '/healthz', '/readyz']) {
      expect(doc.body.paths, path).toHaveProperty([path]);
    }
    expect(doc.body.paths['/v1/studies']!.post!.security).toEqual([{ bearerAuth: [] }]);
    const ui = await fetch(`${harness.env.url}/docs`, { redirect: 'follow' });
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });

  it('lists the refusals a route with a JSON body or an Idempotency-Key answers with', async () => {
    type Operation = { requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> };
    const doc = await call<{ paths: Record<string, Record<string, Operation>> }>(harness.env, null, 'GET', '/docs/json');
    const operations = Object.entries(doc.body.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ name: `${method} ${path}`, operation })));
    const withJson = operations.filter(({ operation }) => operation.requestBody?.content['application/json']);
    expect(withJson.map(({ name }) => name)).toEqual(expect.arrayContaining(['post /v1/batches', 'post /v1/trainings', 'post /v1/models/{task}/promote']));
    // A body over 1 MiB, a body not JSON.
    for (const { name, operation } of withJson) expect(Object.keys(operation.responses), name).toEqual(expect.arrayContaining(['413', '415']));
    // idempotency_key_reused, idempotency_in_progress.
    for (const name of ['post /v1/studies', 'post /v1/batches', 'post /v1/batches/{id}/studies', 'post /v1/trainings']) {
      expect(Object.keys(operations.find((entry) => entry.name === name)!.operation.responses), name).toEqual(expect.arrayContaining(['409', '422']));
    }
  });

  it('declares, with a description, every tag its operations use', async () => {
    type Doc = { tags: { name: string; description?: string }[]; paths: Record<string, Record<string, { tags?: string[] }>> };
    const doc = await call<Doc>(harness.env, null, 'GET', '/docs/json');
    const used = new Set(Object.values(doc.body.paths).flatMap((operations) => Object.values(operations).flatMap((operation) => operation.tags ?? [])));
    expect([...used]).toEqual(expect.arrayContaining(['models', 'trainings']));
    const declared = Object.fromEntries(doc.body.tags.map((tag) => [tag.name, tag.description]));
    for (const tag of used) expect(declared[tag], tag).toMatch(/\w/);
  });
});
