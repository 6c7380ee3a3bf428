import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorBody, SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { startApiEnv, type ApiTestEnv } from './api-test-env.js';
import { freePort, startTestS3, useRedisServers, waitFor } from './helpers/index.js';

/**
 * Redis servers of the tests' own, stopped (killed) after each test. Registered before the
 * clean-ups below, so that they stop after the API that uses them has closed.
 */
const startRedis = useRedisServers();

/** Keeps every write in `dir` (as production's append-only file does) across a restart. */
const persistentIn = (dir: string) => ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir];

const [slice] = mriSlices('yes', 1);
const submit = (env: ApiTestEnv) =>
  call<SubmittedStudy & ErrorBody>(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]) });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('outages', () => {
  it('answers 503 while Redis is down, stores nothing, and recovers when it is back', async () => {
    const redis = await startRedis();
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const env = await startApiEnv(s3, { REDIS_URL: redis.url });
    cleanups.push(env.close);
    expect((await submit(env)).status).toBe(202);
    const before = await env.objectKeys();

    await redis.stop();
    await sleep(100);
    const refused = await submit(env);
    expect([refused.status, refused.body.code]).toEqual([503, 'redis_unavailable']);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect((await call(env, 'alice', 'GET', '/v1/studies')).status).toBe(503);
    const ready = await call<{ ready: boolean; checks: { redis: { ok: boolean }; s3: { ok: boolean } } }>(env, null, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toMatchObject({ redis: { ok: false }, s3: { ok: true } });
    expect((await call(env, null, 'GET', '/healthz')).status).toBe(200);
    expect(await env.objectKeys()).toEqual(before);

    await startRedis({ port: redis.port });
    for (let i = 0; i < 100 && env.api.ctx.redis.status !== 'ready'; i++) await sleep(50);
    expect((await submit(env)).status).toBe(202);
    expect((await call(env, null, 'GET', '/readyz')).status).toBe(200);
  });

  it('leaves no study behind, nor a claim on its key or external id, when Redis goes away mid-submission and comes back', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'btd-redis-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const redis = await startRedis({ args: persistentIn(dir) });
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const env = await startApiEnv(s3, { REDIS_URL: redis.url });
    cleanups.push(env.close);

    // The original's upload waits until Redis has gone, after the study's records were written.
    const store = env.api.ctx.objectStore;
    const put = store.put.bind(store);
    let letUploadFinish = () => {};
    const uploadMayFinish = new Promise<void>((resolve) => (letUploadFinish = resolve));
    store.put = async (...args: Parameters<typeof put>) => {
      await uploadMayFinish;
      return put(...args);
    };
    const form = () => studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { externalId: 'ACC-77' });
    const headers = { 'idempotency-key': 'submission-77' };
    const first = call<ErrorBody>(env, 'alice', 'POST', '/v1/studies', { body: form(), headers });
    await waitFor(async () => (await env.redisKeys()).some((key) => key.includes(':api:study:')), { what: 'the study record' });
    await redis.stop();
    letUploadFinish();
    await sleep(500);
    await startRedis({ port: redis.port, args: persistentIn(dir) });
    expect((await first).status).toBe(503);

    store.put = put;
    expect((await env.redisKeys()).filter((key) => key.includes(':api:study:'))).toEqual([]);
    const retried = await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', { body: form(), headers });
    expect(retried.status).toBe(202);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    const view = await call<{ state: string }>(env, 'alice', 'GET', `/v1/studies/${retried.body.studyId}`);
    expect(view.body.state).toBe('queued');
    expect(await env.api.ctx.queues.inference.getJobCountByTypes('waiting', 'prioritized')).toBe(1);
  });

  it('waits for S3 that is down when it starts (MinIO coming up after it) and serves once S3 answers', async () => {
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    await s3.stop();
    let started = false;
    const waiting: string[] = [];
    const log = { write: (line: string) => void (JSON.parse(line).msg === 'S3 unreachable at start-up; waiting for it' && waiting.push(line)) };
    const starting = startApiEnv(s3, {}, pino({ level: 'warn' }, log)).then((env) => {
      started = true;
      cleanups.push(env.close);
      return env;
    });
    // Without waiting, the start fails at once with the refused connection.
    await waitFor(() => waiting.length >= 2 || started, { timeoutMs: 30_000, what: 'the API to find S3 unreachable twice' });
    expect(started).toBe(false);
    await s3.restart();
    const env = await starting;
    const accepted = await submit(env);
    expect(accepted.status).toBe(202);
  });

  it('waits for Redis that is not up when it starts (Redis coming up after it) and serves once Redis answers', async () => {
    const port = await freePort();
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    let started = false;
    const waiting: string[] = [];
    const log = { write: (line: string) => void (JSON.parse(line).msg === 'Redis unreachable at start-up; waiting for it' && waiting.push(line)) };
    const starting = startApiEnv(s3, { REDIS_URL: `redis://127.0.0.1:${port}` }, pino({ level: 'warn' }, log)).then((env) => {
      started = true;
      cleanups.push(env.close);
      return env;
    });
    // Without waiting, the start fails after 5 s with the refused connection.
    await waitFor(() => waiting.length >= 3 || started, { timeoutMs: 30_000, what: 'the API to find Redis unreachable three times' });
    expect(started).toBe(false);
    await startRedis({ port });
    const env = await starting;
    expect((await call(env, null, 'GET', '/readyz')).status).toBe(200);
    expect((await submit(env)).status).toBe(202);
  });

  it('answers 503 while S3 is down and leaves no record behind but the note that its originals are for the sweep to remove', async () => {
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const env = await startApiEnv(s3);
    cleanups.push(env.close);
    await s3.stop();
    const refused = await submit(env);
    expect([refused.status, refused.body.code]).toEqual([503, 's3_unavailable']);
    // S3 could not say whether any of them was stored, nor remove them.
    expect((await env.redisKeys()).filter((key) => key.includes(':api:'))).toEqual([env.api.ctx.keys.leftOriginals]);
    const ready = await call<{ checks: { redis: { ok: boolean }; s3: { ok: boolean } } }>(env, null, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toMatchObject({ redis: { ok: true }, s3: { ok: false } });
    // Anyone may ask: the answer says that S3 failed its check, not at which address and port.
    expect(ready.body.checks.s3).toEqual({ ok: false, error: 'unreachable' });
  });
});
