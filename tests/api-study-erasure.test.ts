import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { INFERENCE_QUEUE, RESULT_JOB_NAME, inferenceJobId, overlayKey, postResult, resultJobId, resultKey, studyOriginalsPrefix } from '@btd/shared';
import type { ModelProvider, ServedModel } from '@btd/inference-worker';
import type { BatchView, ErrorBody, SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { startApiEnv, type ApiTestEnv, type TestClient } from './api-test-env.js';
import { startTestInferenceWorker } from './api-test-worker.js';
import { failFirstCalls, startDeleteRefusingProxy, waitFor } from './helpers/index.js';

const harness = useApiHarness();

function submit(env: ApiTestEnv, client: TestClient, fields: Record<string, string> = {}, headers: Record<string, string> = {}, path = '/v1/studies') {
  const files = mriSlices('yes', 2).map((slice) => ({ name: slice.name, bytes: slice.bytes }));
  return call<SubmittedStudy>(env, client, 'POST', path, { body: studyForm(files, fields), headers });
}

/** Waits until the API has finished its result jobs: the last one completes just after its study shows done. */
async function resultsSettled(env: ApiTestEnv): Promise<void> {
  while ((await env.redis.llen(`${env.prefix}:results:active`)) > 0) await sleep(20);
}

/** Redis keys and S3 objects that still name the study or one of its images. */
async function traces(env: ApiTestEnv, study: SubmittedStudy): Promise<string[]> {
  const ids = [study.studyId, ...study.images.map((image) => image.imageId)];
  const keys = [...(await env.redisKeys()), ...(await env.objectKeys())];
  const named = keys.filter((key) => ids.some((id) => key.includes(id)));
  // The Redis keys that name no id but hold one: the client's index, the mappings, the deliveries.
  for (const key of (await env.redisKeys()).filter((key) => !named.includes(key))) {
    const type = await env.redis.type(key);
    const text =
      type === 'string' ? await env.redis.get(key) : type === 'hash' ? JSON.stringify(await env.redis.hgetall(key)) : type === 'zset' ? (await env.redis.zrange(key, '0', '-1')).join(',') : type === 'set' ? (await env.redis.smembers(key)).join(',') : '';
    if (text && ids.some((id) => text.includes(id))) named.push(key);
  }
  return named;
}

/** A receiver (webhooks and PACS alike) that holds every answer until released, so that a delivery can be caught in flight. */
async function startHeldReceiver(): Promise<{ url: string; arrived(count: number): Promise<void>; release(): void; close(): Promise<void> }> {
  const waiting: (() => void)[] = [];
  let released = false;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const answer = () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      if (released) answer();
      else waiting.push(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived: async (count) => {
      await waitFor(() => waiting.length >= count, { timeoutMs: 30_000 });
    },
    release: () => {
      released = true;
      for (const answer of waiting.splice(0)) answer();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Models whose first prediction waits until released, so that the worker holds that image's job. */
function holdingFirstPrediction(): { wrap(models: ModelProvider): ModelProvider; held(): Promise<unknown>; release(): void } {
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  let holding = false;
  return {
    wrap: (models) => ({
      acquire: (task) => {
        const lease = models.acquire(task);
        const predict: ServedModel['predict'] = async (image, options) => {
          if (!holding) {
            holding = true;
            await released;
          }
          return lease.model.predict(image, options);
        };
        return { model: { ...lease.model, predict }, release: () => lease.release() };
      },
    }),
    held: () => waitFor(() => holding, { what: 'the worker to hold a job' }),
    release: () => release(),
  };
}

describe('DELETE /v1/studies/:id', () => {
  it('erases a finished study: its objects, records, externalId and Idempotency-Key mappings; then answers 404', async () => {
    const { env } = harness;
    await harness.startWorker();
    const idempotency = { 'idempotency-key': randomUUID() };
    const submitted = await submit(env, 'alice', { externalId: 'ACC-ERASE-1' }, idempotency);
    expect(submitted.status).toBe(202);
    const study = submitted.body;
    await waitForStudy(env, 'alice', study.studyId);
    await resultsSettled(env);
    expect(await env.store.listKeys(studyOriginalsPrefix('alice', study.studyId))).toHaveLength(2);
    expect((await env.store.listKeys('results/')).length).toBeGreaterThan(0);

    const erased = await call(env, 'alice', 'DELETE', `/v1/studies/${study.studyId}`);
    expect(erased.status).toBe(204);
    expect(await traces(env, study)).toEqual([]);
    expect((await call(env, 'alice', 'GET', `/v1/studies/${study.studyId}`)).status).toBe(404);
    expect((await call<ErrorBody>(env, 'alice', 'DELETE', `/v1/studies/${study.studyId}`)).body.code).toBe('not_found');
    expect((await call<{ total: number }>(env, 'alice', 'GET', '/v1/studies?externalId=ACC-ERASE-1')).body.total).toBe(0);
    expect((await call<{ total: number }>(env, 'alice', 'GET', '/v1/studies')).body.total).toBe(0);

    // The same Idempotency-Key and externalId make a new study, not an answer naming the erased one.
    const again = await submit(env, 'alice', { externalId: 'ACC-ERASE-1' }, idempotency);
    expect(again.status).toBe(202);
    expect(again.body.studyId).not.toBe(study.studyId);

    const metrics = await call<string>(env, null, 'GET', '/metrics');
    expect(metrics.body).toMatch(/btd_studies_erased_total\{trigger="request",outcome="erased"\} 1/);
  });

  it('makes a new study under another Idempotency-Key that got the erased study back through its externalId', async () => {
    const { env } = harness;
    const original = (await submit(env, 'alice', { externalId: 'ACC-ERASE-2' }, { 'idempotency-key': randomUUID() })).body;
    const otherKey = { 'idempotency-key': randomUUID() };
    const replayed = await submit(env, 'alice', { externalId: 'ACC-ERASE-2' }, otherKey);
    expect([replayed.status, replayed.body.studyId, replayed.headers.get('idempotent-replayed')]).toEqual([202, original.studyId, 'true']);
    expect((await call(env, 'alice', 'DELETE', `/v1/studies/${original.studyId}`)).status).toBe(204);

    const again = await submit(env, 'alice', { externalId: 'ACC-ERASE-2' }, otherKey);
    expect([again.status, again.headers.get('idempotent-replayed')]).toEqual([202, null]);
    expect(again.body.studyId).not.toBe(original.studyId);
    expect((await call(env, 'alice', 'GET', `/v1/studies/${again.body.studyId}`)).status).toBe(200);
    // The key now names the new study.
    const retried = await submit(env, 'alice', { externalId: 'ACC-ERASE-2' }, otherKey);
    expect([retried.body.studyId, retried.headers.get('idempotent-replayed')]).toEqual([again.body.studyId, 'true']);
  });

  it("answers 404 to another client, leaving the study, and lets an admin client erase any client's study", async () => {
    const { env } = harness;
    await harness.startWorker();
    const study = (await submit(env, 'alice')).body;
    await waitForStudy(env, 'alice', study.studyId);
    await resultsSettled(env);
    expect((await call<ErrorBody>(env, 'bob', 'DELETE', `/v1/studies/${study.studyId}`)).status).toBe(404);
    expect((await call(env, 'alice', 'GET', `/v1/studies/${study.studyId}`)).status).toBe(200);
    expect((await call(env, 'ops', 'DELETE', `/v1/studies/${study.studyId}`)).status).toBe(204);
    expect((await call(env, 'alice', 'GET', `/v1/studies/${study.studyId}`)).status).toBe(404);
    expect(await traces(env, study)).toEqual([]);
  });

  it('erases a study still queued, removing its jobs from the queue, and completes its closed batch, which no longer counts it', async () => {
    const { env } = harness;
    const batch = (await call<BatchView>(env, 'alice', 'POST', '/v1/batches', { body: {} })).body;
    const study = (await submit(env, 'alice', {}, {}, `/v1/batches/${batch.batchId}/studies`)).body;
    await call(env, 'alice', 'POST', `/v1/batches/${batch.batchId}/close`);
    const inference = env.api.ctx.queues.inference;
    const jobIds = study.images.map((image) => inferenceJobId(image.imageId));
    expect(await Promise.all(jobIds.map((jobId) => inference.getJobState(jobId)))).toEqual(['prioritized', 'prioritized']);

    expect((await call(env, 'alice', 'DELETE', `/v1/studies/${study.studyId}`)).status).toBe(204);
    expect(await Promise.all(jobIds.map((jobId) => inference.getJobState(jobId)))).toEqual(['unknown', 'unknown']);
    expect(await inference.getJobCounts()).toMatchObject({ waiting: 0, prioritized: 0, delayed: 0, active: 0 });
    expect(await traces(env, study)).toEqual([]);
    const after = (await call<BatchView>(env, 'alice', 'GET', `/v1/batches/${batch.batchId}`)).body;
    expect(after.state).toBe('done');
    expect(after.counts).toMatchObject({ total: 0, queued: 0, done: 0, failed: 0 });
  });

  it('announces the batch an erasure completes, though queueing its webhook first meets a Redis blip', async () => {
    const { env } = harness;
    const receiver = await harness.startReceiver();
    const batch = (await call<BatchView>(env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl: `${receiver.url}/hooks` } })).body;
    const study = (await submit(env, 'alice', {}, {}, `/v1/batches/${batch.batchId}/studies`)).body;
    await call(env, 'alice', 'POST', `/v1/batches/${batch.batchId}/close`);
    const enqueue = failFirstCalls(env.api.ctx.queues.webhooks, 'add');
    try {
      // Erased for good: an error here would send the client to erase it again, which finds nothing to announce.
      expect((await call(env, 'alice', 'DELETE', `/v1/studies/${study.studyId}`)).status).toBe(204);
    } finally {
      enqueue.restore();
    }
    expect(enqueue.left()).toBe(0);
    const [hook] = await receiver.waitFor(1);
    expect(JSON.parse(hook!.body)).toMatchObject({ event: 'batch.completed', batch: { batchId: batch.batchId, state: 'done' } });
    await sleep(500);
    expect(receiver.received).toHaveLength(1);
  });

  it("erases a study whose image a worker holds: the worker's late result leaves nothing behind, and its batch completes with its other study", async () => {
    const { env } = harness;
    const holding = holdingFirstPrediction();
    await harness.startWorker(holding.wrap);
    const batch = (await call<BatchView>(env, 'alice', 'POST', '/v1/batches', { body: {} })).body;
    const erased = (await submit(env, 'alice', {}, {}, `/v1/batches/${batch.batchId}/studies`)).body;
    await holding.held();
    const kept = (await submit(env, 'alice', {}, {}, `/v1/batches/${batch.batchId}/studies`)).body;
    await call(env, 'alice', 'POST', `/v1/batches/${batch.batchId}/close`);
    const inference = env.api.ctx.queues.inference;
    const jobIds = erased.images.map((image) => inferenceJobId(image.imageId));
    const states = await Promise.all(jobIds.map((jobId) => inference.getJobState(jobId)));
    expect([...states].sort()).toEqual(['active', 'prioritized']);
    const waitingJob = jobIds[states.indexOf('prioritized')]!;

    expect((await call(env, 'alice', 'DELETE', `/v1/studies/${erased.studyId}`)).status).toBe(204);
    expect(await inference.getJobState(waitingJob)).toBe('unknown');
    holding.release();

    await waitForStudy(env, 'alice', kept.studyId);
    const done = await waitFor(async () => {
      const view = (await call<BatchView>(env, 'alice', 'GET', `/v1/batches/${batch.batchId}`)).body;
      return view.state === 'done' ? view : undefined;
    }, { timeoutMs: 60_000, what: 'the batch to complete' });
    expect(done.counts).toMatchObject({ total: 1, queued: 0, processing: 0, done: 1, failed: 0 });
    expect(done.studies.items.map((item) => item.studyId)).toEqual([kept.studyId]);
    // The held job's result came after the erasure: its objects, its job and the held job go.
    await waitFor(async () => (await traces(env, erased)).length === 0, { timeoutMs: 60_000, what: 'no trace of the erased study' });
    const objects = await env.objectKeys();
    expect(objects.filter((key) => key.startsWith('results/'))).toHaveLength(kept.images.length * 2);
    expect(objects.filter((key) => key.startsWith('originals/'))).toHaveLength(kept.images.length);
    const batchRecord = await env.redis.hgetall(env.api.ctx.keys.batch(batch.batchId));
    expect(batchRecord).toMatchObject({ studyCount: '1', doneStudies: '1' });
  }, 120_000);

  it("stops waiting for an erased study's inference job its worker still holds on the result's last attempt: the result is discarded, not failed and kept", async () => {
    const { env } = harness;
    const study = (await submit(env, 'alice')).body;
    const { imageId } = study.images[0]!;
    // A worker that took the image's job and holds it past every attempt of its result.
    const holder = new Worker(INFERENCE_QUEUE, null, { connection: env.redis.duplicate({ maxRetriesPerRequest: null }), prefix: env.prefix, lockDuration: 60_000 });
    try {
      const held = await holder.getNextJob('held-token');
      expect(held?.id).toBe(inferenceJobId(imageId));
      expect((await call(env, 'alice', 'DELETE', `/v1/studies/${study.studyId}`)).status).toBe(204);
      await env.store.putJson(resultKey(imageId), { late: true });
      const message = { kind: 'failed' as const, studyId: study.studyId, imageId, clientId: 'alice', finishedAt: new Date().toISOString(), reason: 'late' };
      const results = env.api.ctx.queues.results;
      await results.add(RESULT_JOB_NAME, message, { jobId: resultJobId(imageId), attempts: 1 });

      // Discarded: its job removed once completed, rather than failed and kept a week naming the study.
      await waitFor(async () => (await results.getJobState(resultJobId(imageId))) === 'unknown', { what: 'the result job to go' });
      expect(await results.getFailedCount()).toBe(0);
      expect(await env.objectKeys()).toEqual([]);
      expect(await env.api.ctx.queues.inference.getJobState(inferenceJobId(imageId))).toBe('active');
    } finally {
      await holder.close(true);
    }
  });

  it('discards a late result for a study erased once finished (a worker that stalled and still finished): its objects and job go', async () => {
    const { env } = harness;
    await harness.startWorker();
    const study = (await submit(env, 'alice')).body;
    await waitForStudy(env, 'alice', study.studyId);
    await resultsSettled(env);
    expect((await call(env, 'alice', 'DELETE', `/v1/studies/${study.studyId}`)).status).toBe(204);
    // What a worker that lost its lock writes and posts after the erasure.
    const { imageId } = study.images[0]!;
    await env.store.putJson(resultKey(imageId), { late: true });
    await env.store.put(overlayKey(imageId), new Uint8Array([1, 2, 3]), 'image/png');
    const finishedAt = new Date().toISOString();
    await postResult(env.api.ctx.queues.results, { kind: 'failed', studyId: study.studyId, imageId, clientId: 'alice', finishedAt, reason: 'late' });
    await waitFor(async () => (await traces(env, study)).length === 0, { what: 'no trace of the erased study' });
    expect(await env.objectKeys()).toEqual([]);
  });

  it("takes an erased study out of its batch's listing, the batch keeping its counts", async () => {
    const { env } = harness;
    await harness.startWorker();
    const batch = (await call<BatchView>(env, 'alice', 'POST', '/v1/batches', { body: {} })).body;
    const studies = [];
    for (let i = 0; i < 2; i++) studies.push((await submit(env, 'alice', {}, {}, `/v1/batches/${batch.batchId}/studies`)).body);
    await call(env, 'alice', 'POST', `/v1/batches/${batch.batchId}/close`);
    for (const study of studies) await waitForStudy(env, 'alice', study.studyId);
    await resultsSettled(env);
    expect((await call(env, 'alice', 'DELETE', `/v1/studies/${studies[0]!.studyId}`)).status).toBe(204);
    const after = (await call<BatchView>(env, 'alice', 'GET', `/v1/batches/${batch.batchId}`)).body;
    expect(after.studies.items.map((item) => item.studyId)).toEqual([studies[1]!.studyId]);
    expect(after.counts).toMatchObject({ total: 2, done: 2 });
    expect(after.state).toBe('done');
    expect(await traces(env, studies[0]!)).toEqual([]);
  });

  it('answers 503 and keeps every record when S3 refuses one of its objects, and erases it when asked again', async () => {
    const proxy = await startDeleteRefusingProxy(harness.s3.endpoint);
    const env = await startApiEnv(harness.s3, { S3_ENDPOINT: proxy.endpoint });
    const worker = await startTestInferenceWorker(env);
    try {
      const study = (await submit(env, 'alice')).body;
      await waitForStudy(env, 'alice', study.studyId);
      await resultsSettled(env);
    await resultsSettled(env);
      const originals = await env.store.listKeys(studyOriginalsPrefix('alice', study.studyId));
      proxy.refuse([{ key: originals[1]! }]);
      const failed = await call<ErrorBody>(env, 'alice', 'DELETE', `/v1/studies/${study.studyId}`);
      expect(failed.status).toBe(503);
      expect(failed.headers.get('retry-after')).toBeTruthy();
      expect((await call(env, 'alice', 'GET', `/v1/studies/${study.studyId}`)).status).toBe(200);
      expect((await call<{ total: number }>(env, 'alice', 'GET', '/v1/studies')).body.total).toBe(1);

      proxy.refuse([]);
      expect((await call(env, 'alice', 'DELETE', `/v1/studies/${study.studyId}`)).status).toBe(204);
      expect(await traces(env, study)).toEqual([]);
      const metrics = await call<string>(env, null, 'GET', '/metrics');
      expect(metrics.body).toMatch(/btd_studies_erased_total\{trigger="request",outcome="failed"\} 1/);
    } finally {
      await worker.close();
      await env.close();
      await proxy.close();
    }
  });
  it('leaves no delivery record behind when erased while its webhook and PACS export are being sent (a multi-frame DICOM study)', async () => {
    const receiver = await startHeldReceiver();
    const env = await startApiEnv(harness.s3, { PACS_STOW_URL: `${receiver.url}/dicom-web` });
    const worker = await startTestInferenceWorker(env);
    try {
      const series = readFileSync(new URL('./fixtures/dicom/rle-3-frames.dcm', import.meta.url));
      const form = studyForm([{ name: 'series.dcm', bytes: series, type: 'application/dicom' }], { callbackUrl: `${receiver.url}/hooks` });
      const study = (await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', { body: form })).body;
      expect(study.images).toHaveLength(3);
      await waitForStudy(env, 'alice', study.studyId);
      // The study.completed webhook and the export have reached their receivers, which have not answered yet.
      await receiver.arrived(2);
      expect((await call(env, 'alice', 'DELETE', `/v1/studies/${study.studyId}`)).status).toBe(204);
      receiver.release();
      await waitFor(async () => (await env.redis.llen(`${env.prefix}:webhooks:active`)) === 0, { what: 'the deliveries in flight to end' });
      // Their jobs, still running when the study was erased, age out as finished jobs do; no record of the study stays.
      expect((await traces(env, study)).filter((key) => key.startsWith(`${env.prefix}:api:`))).toEqual([]);
    } finally {
      await worker.close();
      await env.close();
      await receiver.close();
    }
  });
  it('announces nothing for a study erased between its last result and its announcement, leaving no delivery nor webhook job', async () => {
    const { env } = harness;
    await harness.startWorker();
    const receiver = await harness.startReceiver();
    // The study is erased right after the result that finishes it is applied, before the results job announces it.
    const studies = env.api.ctx.studies;
    const applyResult = studies.applyResult.bind(studies);
    let erasedStatus: number | undefined;
    studies.applyResult = async (study, message) => {
      const outcome = await applyResult(study, message);
      if (outcome.finishedStudy) erasedStatus = (await call(env, 'alice', 'DELETE', `/v1/studies/${study.id}`)).status;
      return outcome;
    };
    const study = (await submit(env, 'alice', { callbackUrl: `${receiver.url}/hooks` })).body;
    expect(await waitFor(() => erasedStatus, { what: 'the erasure' })).toBe(204);
    await resultsSettled(env);
    expect(await env.api.ctx.queues.webhooks.getJobCounts()).toMatchObject({ waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0 });
    expect((await traces(env, study)).filter((key) => key.startsWith(`${env.prefix}:api:`))).toEqual([]);
  });
});
