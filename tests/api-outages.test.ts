import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorBody, SubmittedStudy } from '@btd/api';
import { Redis } from '@btd/shared';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { startApiEnv, type ApiTestEnv } from './api-test-env.js';
import { startRedisServer, startTestS3, waitFor } from './helpers/index.js';

/** A free TCP port in 63xx, for a Redis of this test's own. */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 6300 + Math.floor(Math.random() * 99);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer().once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** A Redis of this test's own; with `dir`, it keeps every write there (as production's AOF does) across a restart. */
async function startRedis(port: number, dir?: string): Promise<ChildProcess> {
  const persistence = dir ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] : ['--appendonly', 'no'];
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], { stdio: 'ignore' });
  const probe = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 1 });
  probe.on('error', () => {});
  for (let i = 0; i < 100; i++) {
    if ((await probe.ping().catch(() => '')) === 'PONG') break;
    await sleep(50);
  }
  probe.disconnect();
  return child;
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

const [slice] = mriSlices('yes', 1);
const submit = (env: ApiTestEnv) =>
  call<SubmittedStudy & ErrorBody>(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]) });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('outages', () => {
  it('answers 503 while Redis is down, stores nothing, and recovers when it is back', async () => {
    const port = await freePort();
    let redis = await startRedis(port);
    cleanups.push(async () => stopRedis(redis));
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const env = await startApiEnv(s3, { REDIS_URL: `redis://127.0.0.1:${port}` });
    cleanups.push(env.close);
    expect((await submit(env)).status).toBe(202);
    const before = await env.objectKeys();

    await stopRedis(redis);
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

    redis = await startRedis(port);
    for (let i = 0; i < 100 && env.api.ctx.redis.status !== 'ready'; i++) await sleep(50);
    expect((await submit(env)).status).toBe(202);
    expect((await call(env, null, 'GET', '/readyz')).status).toBe(200);
  });

  it('leaves no study behind, nor a claim on its key or external id, when Redis goes away mid-submission and comes back', async () => {
    const port = await freePort();
    const dir = await mkdtemp(path.join(tmpdir(), 'btd-redis-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    let redis = await startRedis(port, dir);
    cleanups.push(async () => stopRedis(redis));
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const env = await startApiEnv(s3, { REDIS_URL: `redis://127.0.0.1:${port}` });
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
    await stopRedis(redis);
    letUploadFinish();
    await sleep(500);
    redis = await startRedis(port, dir);
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
    const redis = await startRedisServer({ port });
    cleanups.push(redis.stop);
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
