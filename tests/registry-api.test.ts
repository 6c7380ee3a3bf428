import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelRegistry, TRAINING_QUEUE } from '@btd/shared';
import { Worker } from 'bullmq';
import { startApiEnv, type ApiTestEnv, type TestClient } from './api-test-env.js';
import { startTestS3, type TestS3 } from './helpers/index.js';
import { makeArtifact, scrambleWeights } from './registry-fixtures.js';

let s3: TestS3;
let artifacts: string;
let env: ApiTestEnv;
let registry: ModelRegistry;

beforeAll(async () => {
  s3 = await startTestS3();
  artifacts = await mkdtemp(path.join(tmpdir(), 'btd-artifacts-'));
});

afterAll(async () => {
  await s3.close();
  await rm(artifacts, { recursive: true, force: true });
});

beforeEach(async () => {
  env = await startApiEnv(s3);
  registry = new ModelRegistry({ store: env.store, redis: env.redis, namespace: env.prefix });
});

afterEach(async () => {
  await env.close();
});

async function call(client: TestClient, method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await env.api.app.inject({ method, url, headers: { ...env.auth(client), ...headers }, ...(body === undefined ? {} : { payload: body as object }) });
  return { status: response.statusCode, body: response.headers['content-type']?.toString().includes('json') ? response.json() : response.body, headers: response.headers };
}

const publish = async (prepare?: (dir: string) => Promise<void>) => {
  const dir = await makeArtifact(artifacts, 'tumor-binary');
  await prepare?.(dir);
  return (await registry.publishDirectory('tumor-binary', dir, { source: { kind: 'test' } })).version;
};

describe('/v1/models', () => {
  it('lists tasks and versions, and shows a version with its manifest and files', async () => {
    const version = await publish();
    await registry.promote('tumor-binary', version, { by: 'seed', reason: 'first' });

    const tasks = await call('alice', 'GET', '/v1/models');
    expect(tasks.status).toBe(200);
    expect(tasks.body.tasks).toEqual([
      expect.objectContaining({ task: 'tumor-binary', versions: 1, promoted: expect.objectContaining({ version }) }),
      expect.objectContaining({ task: 'tumor-type', versions: 0, promoted: null }),
    ]);

    const listed = await call('alice', 'GET', '/v1/models/tumor-binary/versions');
    expect(listed.body).toMatchObject({ promoted: version, versions: [{ version, state: 'promoted', promoted: true, name: 'tumor-binary' }] });

    const detail = await call('alice', 'GET', `/v1/models/tumor-binary/versions/${version}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({ task: 'tumor-binary', manifest: { task: 'tumor-binary', inputSize: 32 }, source: { kind: 'test' }, refusals: [] });
    const names = detail.body.files.map((f: { name: string }) => f.name);
    expect(names).toEqual(expect.arrayContaining(['manifest.json', 'model.json', 'weights.bin', 'probe.png']));
    expect(names).not.toContain('content-hash.json');

    const probe = await env.api.app.inject({ method: 'GET', url: `/v1/models/tumor-binary/versions/${version}/files/probe.png`, headers: env.auth('alice') });
    expect(probe.statusCode).toBe(200);
    expect(probe.headers['content-type']).toBe('image/png');
    expect(probe.rawPayload.subarray(1, 4).toString()).toBe('PNG');
    expect((await call('alice', 'GET', `/v1/models/tumor-binary/versions/${version}/files/content-hash.json`)).status).toBe(404);
    expect((await call('alice', 'GET', '/v1/models/tumor-binary/versions/20990101T000000Z-00000000')).status).toBe(404);
    expect((await call('alice', 'GET', '/v1/models/brain-age/versions')).status).toBe(400);
  });

  it('lists versions without the per-image lists of their evaluations, which the version itself shows', async () => {
    const wrong = Array.from({ length: 40 }, (_, i) => ({ relPath: `no/no${i}.jpg`, actual: 'no_tumor', predicted: 'tumor', probability: 0.9, group: `no/no${i}.jpg`, groupSize: 1 }));
    const rejected = [{ relPath: 'yes/broken.jpg', reason: 'truncated' }];
    const metrics = {
      test: { n: 400, accuracy: 0.9, confusion: [[160, 40], [0, 200]], classes: ['tumor', 'no_tumor'], byGroup: { groups: 390, accuracy: 0.9, groupsWithErrors: 40, accuracyInterval: [0.87, 0.93] }, misclassified: wrong },
      laterSet: { n: 10, accuracy: 1, misclassified: [], rejected, command: 'btd eval --record laterSet' },
    };
    const version = await publish(async (dir) => {
      const file = path.join(dir, 'manifest.json');
      await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), metrics }));
    });

    const listed = (await call('alice', 'GET', '/v1/models/tumor-binary/versions')).body.versions[0];
    expect(listed.metrics).toEqual({
      test: { n: 400, accuracy: 0.9, confusion: [[160, 40], [0, 200]], classes: ['tumor', 'no_tumor'], byGroup: metrics.test.byGroup },
      laterSet: { n: 10, accuracy: 1, command: 'btd eval --record laterSet' },
    });
    const shown = (await call('alice', 'GET', `/v1/models/tumor-binary/versions/${version}`)).body;
    expect(shown.metrics).toEqual(metrics);
    expect(shown.manifest.metrics).toEqual(metrics);
  });

  it('lets only admins promote, after the version loads and passes its probe', async () => {
    const [first, second] = [await publish(), await publish()];
    const broken = await publish(scrambleWeights);
    await registry.promote('tumor-binary', first, { by: 'seed', reason: 'first' });

    expect((await call('alice', 'POST', '/v1/models/tumor-binary/promote', { version: second, reason: 'mine' })).status).toBe(403);

    const refused = await call('ops', 'POST', '/v1/models/tumor-binary/promote', { version: broken, reason: 'try' });
    expect(refused).toMatchObject({ status: 422, body: { code: 'model_refused', message: expect.stringMatching(/probe prediction failed: .*gave NaN/) } });
    expect((await registry.promoted('tumor-binary'))?.version).toBe(first);

    const stale = await call('ops', 'POST', '/v1/models/tumor-binary/promote', { version: second, reason: 'x', expectedCurrent: second });
    expect(stale).toMatchObject({ status: 409, body: { code: 'promotion_conflict' } });

    const promoted = await call('ops', 'POST', '/v1/models/tumor-binary/promote', { version: second, reason: 'better' });
    expect(promoted).toMatchObject({ status: 200, body: { version: second, by: 'ops', reason: 'better', previousVersion: first } });
    const history = await call('alice', 'GET', '/v1/models/tumor-binary/promotions');
    expect(history.body.promotions.map((p: { version: string }) => p.version)).toEqual([second, first]);

    const missing = await call('ops', 'POST', '/v1/models/tumor-binary/promote', { version: '20990101T000000Z-00000000', reason: 'x' });
    expect(missing.status).toBe(404);
  });

  it('rolls back to the previous version, and says so when there is none', async () => {
    const [first, second] = [await publish(), await publish()];
    await registry.promote('tumor-binary', first, { by: 'seed', reason: 'first' });
    await registry.promote('tumor-binary', second, { by: 'seed', reason: 'second' });

    const back = await call('ops', 'POST', '/v1/models/tumor-binary/rollback', { reason: 'regression' });
    expect(back).toMatchObject({ status: 200, body: { version: first, action: 'rollback', previousVersion: second } });
    const none = await call('ops', 'POST', '/v1/models/tumor-binary/rollback', { reason: 'again' });
    expect(none).toMatchObject({ status: 409, body: { code: 'no_rollback_target' } });
  });

  it('rolls back past a version removed from the registry, and refuses, as corrupt, one whose files are gone', async () => {
    const [a, b, c, d] = [await publish(), await publish(), await publish(), await publish()];
    for (const version of [a, b, c, d]) await registry.promote('tumor-binary', version, { by: 'seed', reason: version });
    // C was removed from the bucket whole; B lost its weights only.
    await env.store.deletePrefix(`models/tumor-binary/${c}/`);
    await env.store.delete(`models/tumor-binary/${b}/weights.bin`);

    const back = await call('ops', 'POST', '/v1/models/tumor-binary/rollback', { reason: 'D is bad' });
    expect(back).toMatchObject({ status: 422, body: { code: 'model_corrupt' } });
    expect(back.body.message).toContain('weights.bin is missing');
    expect((await registry.promoted('tumor-binary'))?.version).toBe(d);
    const named = await call('ops', 'POST', '/v1/models/tumor-binary/rollback', { reason: 'D is bad', to: a });
    expect(named).toMatchObject({ status: 200, body: { version: a, action: 'rollback', previousVersion: d } });
  });

  it('lists every version when one has lost its manifest or had it changed, showing those as corrupt, and answers 422 for them', async () => {
    const [kept, lost, changed] = [await publish(), await publish(), await publish()];
    await registry.promote('tumor-binary', lost, { by: 'seed', reason: 'lost' });
    // A lifecycle rule removed one manifest; someone edited another in the bucket.
    await env.store.delete(`models/tumor-binary/${lost}/manifest.json`);
    await env.store.put(`models/tumor-binary/${changed}/manifest.json`, '{"name":"edited"', 'application/json');

    const listed = await call('alice', 'GET', '/v1/models/tumor-binary/versions');
    expect(listed.status).toBe(200);
    expect(listed.body.promoted).toBe(lost);
    // Versions published within one second sort by their content hash: compare them by id.
    const byVersion = Object.fromEntries(listed.body.versions.map((v: { version: string }) => [v.version, v]));
    expect(byVersion).toEqual({
      [kept]: expect.objectContaining({ state: 'candidate', promoted: false, name: 'tumor-binary', createdAt: expect.any(String) }),
      [lost]: expect.objectContaining({ state: 'corrupt', promoted: true, name: null, createdAt: null, reasons: [expect.stringContaining('manifest.json is missing from the store')] }),
      [changed]: expect.objectContaining({ state: 'corrupt', promoted: false, name: null, createdAt: null, reasons: [expect.stringContaining('manifest.json does not match its sha256')] }),
    });

    const shown = await call('alice', 'GET', `/v1/models/tumor-binary/versions/${lost}`);
    expect(shown).toMatchObject({ status: 422, body: { code: 'model_corrupt', message: expect.stringContaining('manifest.json is missing from the store') } });
    const file = await call('alice', 'GET', `/v1/models/tumor-binary/versions/${changed}/files/manifest.json`);
    expect(file).toMatchObject({ status: 422, body: { code: 'model_corrupt', message: expect.stringContaining('manifest.json does not match its sha256') } });
    expect((await call('alice', 'GET', `/v1/models/tumor-binary/versions/${kept}`)).status).toBe(200);
  });

  it('answers 409 to a rollback when a promotion lands while its target is checked, and keeps that promotion', async () => {
    const [a, b, c] = [await publish(), await publish(), await publish()];
    await registry.promote('tumor-binary', a, { by: 'seed', reason: 'a' });
    await registry.promote('tumor-binary', b, { by: 'seed', reason: 'b' });
    // While the API fetches A (the rollback's target) for its check, the trainer promotes C.
    const store = env.api.ctx.objectStore;
    const get = store.get.bind(store);
    store.get = async (...args: Parameters<typeof store.get>) => {
      if (args[0].endsWith(`/${a}/weights.bin`)) await registry.promote('tumor-binary', c, { by: 'trainer for ops', reason: 'passed the gate' });
      return get(...args);
    };

    const back = await call('ops', 'POST', '/v1/models/tumor-binary/rollback', { reason: 'B is bad' });
    expect(back).toMatchObject({ status: 409, body: { code: 'promotion_conflict' } });
    expect((await registry.promoted('tumor-binary'))?.version).toBe(c);
    const history = await call('alice', 'GET', '/v1/models/tumor-binary/promotions');
    expect(history.body.promotions.map((p: { version: string; action: string }) => [p.action, p.version])).toEqual([
      ['promote', c],
      ['promote', b],
      ['promote', a],
    ]);
  });
});

describe('/v1/trainings', () => {
  const request = { task: 'tumor-binary', dataset: { kind: 'local', path: '/data/br35h' }, hyperParameters: { epochs: 2, inputSize: 48 } };

  it('queues a training for admins, once per idempotency key, and shows it', async () => {
    expect((await call('alice', 'POST', '/v1/trainings', request)).status).toBe(403);

    const first = await call('ops', 'POST', '/v1/trainings', request, { 'idempotency-key': 'nightly-1' });
    expect(first).toMatchObject({ status: 202, body: { id: expect.stringMatching(/^training-/), state: 'waiting' } });
    expect(first.headers.location).toBe(`/v1/trainings/${first.body.id}`);
    const again = await call('ops', 'POST', '/v1/trainings', request, { 'idempotency-key': 'nightly-1' });
    expect(again.body.id).toBe(first.body.id);
    const other = await call('ops', 'POST', '/v1/trainings', request);
    expect(other.body.id).not.toBe(first.body.id);

    const shown = await call('alice', 'GET', first.headers.location as string);
    expect(shown).toMatchObject({ status: 200, body: { id: first.body.id, state: 'waiting', progress: null, request: { ...request, requestedBy: 'ops' } } });
    const listed = await call('alice', 'GET', '/v1/trainings');
    expect(listed.body.items).toHaveLength(2);
    expect((await call('alice', 'GET', '/v1/trainings/training-nope')).status).toBe(404);
  });

  it('replays a retry with the same Idempotency-Key and refuses the key for a different request', async () => {
    const headers = { 'idempotency-key': 'nightly-2' };
    const first = await call('ops', 'POST', '/v1/trainings', request, headers);
    expect(first).toMatchObject({ status: 202, body: { state: 'waiting' } });
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    // The same request with its fields in another order is a retry.
    const reordered = { hyperParameters: { inputSize: 48, epochs: 2 }, dataset: { path: '/data/br35h', kind: 'local' }, task: 'tumor-binary' };
    const retry = await call('ops', 'POST', '/v1/trainings', reordered, headers);
    expect(retry).toMatchObject({ status: 202, body: first.body });
    expect([retry.headers.location, retry.headers['idempotent-replayed']]).toEqual([first.headers.location, 'true']);

    const other = { task: 'tumor-type', dataset: { kind: 'local', path: '/data/other' }, hyperParameters: { epochs: 50 } };
    const reused = await call('ops', 'POST', '/v1/trainings', other, headers);
    expect(reused).toMatchObject({ status: 422, body: { code: 'idempotency_key_reused' } });

    // Once the key is forgotten (IDEMPOTENCY_TTL_SECONDS) the training it started still tells a retry from another request.
    await env.redis.del(env.api.ctx.keys.idempotency('ops', 'nightly-2'));
    expect(await call('ops', 'POST', '/v1/trainings', other, headers)).toMatchObject({ status: 422, body: { code: 'idempotency_key_reused' } });
    const late = await call('ops', 'POST', '/v1/trainings', request, headers);
    expect(late).toMatchObject({ status: 202, body: { id: first.body.id } });
    expect(late.headers['idempotent-replayed']).toBe('true');

    // A replay shows the training as it stands now.
    const result = { task: 'tumor-binary', version: 'v1', contentHash: 'h', promoted: true, reasons: [], metrics: {} };
    const worker = new Worker(TRAINING_QUEUE, () => Promise.resolve(result), { connection: { url: env.config.redisUrl }, prefix: env.prefix });
    try {
      await expect.poll(async () => (await call('alice', 'GET', first.headers.location as string)).body.state).toBe('completed');
    } finally {
      await worker.close();
    }
    expect((await call('ops', 'POST', '/v1/trainings', request, headers)).body).toMatchObject({ id: first.body.id, state: 'completed' });

    const shown = await call('alice', 'GET', first.headers.location as string);
    expect(shown.body.request).toEqual({ ...request, requestedBy: 'ops' });
    expect((await call('alice', 'GET', '/v1/trainings')).body.items).toHaveLength(1);
  });

  it('never shows a training as completed without its result, however its end falls between reads', async () => {
    // A stand-in trainer that finishes each job at once: the end of a job falls between the API's
    // reads of it as often as it can.
    const result = { task: 'tumor-binary', version: 'v1', contentHash: 'h', promoted: true, reasons: [], metrics: { accuracy: 0.9 } };
    const worker = new Worker(TRAINING_QUEUE, () => Promise.resolve(result), { connection: { url: env.config.redisUrl }, prefix: env.prefix, concurrency: 4 });
    try {
      const ids = await Promise.all(Array.from({ length: 30 }, async () => (await call('ops', 'POST', '/v1/trainings', request)).body.id as string));
      const shown = await Promise.all(
        ids.map(async (id) => {
          const states: { state: string; result?: unknown }[] = [];
          for (let polls = 0; polls < 2000; polls++) {
            const { body } = await call('alice', 'GET', `/v1/trainings/${id}`);
            states.push(body as { state: string; result?: unknown });
            if (body.state === 'completed') break;
          }
          return states;
        }),
      );
      for (const states of shown) {
        expect(states.at(-1)).toMatchObject({ state: 'completed', result });
        expect(states.filter((s) => s.state === 'completed' && !s.result)).toEqual([]);
      }
    } finally {
      await worker.close();
    }
  });

  it('shows a metric the evaluation set could not measure as null, not 0', async () => {
    // The gate's sensitivity on a set without tumour images: nothing measured it.
    const result = { task: 'tumor-binary', version: 'v1', contentHash: 'h', promoted: false, reasons: ['sensitivity was not measured'], metrics: { n: 4, accuracy: 1, sensitivity: null, macroRecall: 1 } };
    const worker = new Worker(TRAINING_QUEUE, () => Promise.resolve(result), { connection: { url: env.config.redisUrl }, prefix: env.prefix });
    try {
      const { id } = (await call('ops', 'POST', '/v1/trainings', request)).body as { id: string };
      let shown = (await call('alice', 'GET', `/v1/trainings/${id}`)).body as { state: string; result?: { metrics: Record<string, unknown> } };
      for (let polls = 0; polls < 2000 && shown.state !== 'completed'; polls++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        shown = (await call('alice', 'GET', `/v1/trainings/${id}`)).body as typeof shown;
      }
      expect(shown.result?.metrics).toEqual({ n: 4, accuracy: 1, sensitivity: null, macroRecall: 1 });
    } finally {
      await worker.close();
    }
  });

  it('lists trainings newest first, page by page over every state, and refuses a parameter it does not know', async () => {
    const start = async () => (await call('ops', 'POST', '/v1/trainings', request)).body.id as string;
    const finished = [await start(), await start()];
    const result = { task: 'tumor-binary', version: 'v1', contentHash: 'h', promoted: true, reasons: [], metrics: {} };
    const worker = new Worker(TRAINING_QUEUE, () => Promise.resolve(result), { connection: { url: env.config.redisUrl }, prefix: env.prefix });
    try {
      for (const id of finished) await expect.poll(async () => (await call('alice', 'GET', `/v1/trainings/${id}`)).body.state).toBe('completed');
    } finally {
      await worker.close();
    }
    const waiting = [await start(), await start(), await start()];

    const seen: { id: string; state: string; createdAt: string }[] = [];
    let query: string | undefined = 'limit=2';
    const pages: number[] = [];
    while (query !== undefined) {
      const page = await call('alice', 'GET', `/v1/trainings?${query}`);
      expect(page.status).toBe(200);
      pages.push(page.body.items.length);
      seen.push(...page.body.items);
      query = page.body.next;
    }
    expect(pages).toEqual([2, 2, 1]);
    expect(seen.map((t) => t.id).sort()).toEqual([...finished, ...waiting].sort());
    expect(seen.map((t) => t.state)).toEqual(['waiting', 'waiting', 'waiting', 'completed', 'completed']);
    const created = seen.map((t) => t.createdAt);
    expect(created).toEqual([...created].sort().reverse());
    expect((await call('alice', 'GET', '/v1/trainings')).body).toEqual({ items: seen });

    const misspelt = await call('alice', 'GET', '/v1/trainings?limt=2');
    expect(misspelt).toMatchObject({ status: 400, body: { code: 'invalid_request', message: expect.stringContaining('limt') } });
    expect((await call('alice', 'GET', '/v1/trainings?limit=101')).status).toBe(400);
    const gone = await call('alice', 'GET', '/v1/trainings?after=training-gone');
    expect(gone).toMatchObject({ status: 400, body: { code: 'invalid_request', message: expect.stringContaining('training-gone') } });
  });

  it('refuses a malformed request or an empty S3 dataset before queueing', async () => {
    const badTask = await call('ops', 'POST', '/v1/trainings', { ...request, task: 'brain-age' });
    expect(badTask.status).toBe(400);
    const extra = await call('ops', 'POST', '/v1/trainings', { ...request, hyperParameters: { epochs: 2, learningRate: 9 } });
    expect(extra.status).toBe(400);
    const zeroAngle = await call('ops', 'POST', '/v1/trainings', { ...request, hyperParameters: { epochs: 2, testTimeRotations: [0, 5] } });
    expect(zeroAngle.status).toBe(400);
    // A threshold for rotations without the rotations: the trainer would refuse it, so the API does.
    const thresholdAlone = await call('ops', 'POST', '/v1/trainings', { ...request, hyperParameters: { epochs: 2, testTimeRotationsBelow: 0.9 } });
    expect(thresholdAlone).toMatchObject({ status: 400, body: { code: 'invalid_request', message: expect.stringMatching(/hyperParameters: .*needs rotations/) } });
    const empty = await call('ops', 'POST', '/v1/trainings', { ...request, dataset: { kind: 's3', prefix: 'datasets/none/' } });
    expect(empty).toMatchObject({ status: 422, body: { code: 'dataset_empty' } });
    // Folder markers, as consoles and sync tools write them, are no images: the trainer's mirror skips them.
    for (const marker of ['datasets/new/', 'datasets/new/yes/', 'datasets/new/no/']) await env.store.put(marker, '', 'application/x-directory');
    const markersOnly = await call('ops', 'POST', '/v1/trainings', { ...request, dataset: { kind: 's3', prefix: 'datasets/new/' } });
    expect(markersOnly).toMatchObject({ status: 422, body: { code: 'dataset_empty' } });
    expect((await call('ops', 'GET', '/v1/trainings')).body.items).toHaveLength(0);
  });
});
