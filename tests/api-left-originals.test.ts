import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LEFT_ORIGINALS_MAX_TRIES, sweepLeftOriginals, type ErrorBody, type SubmittedStudy } from '@btd/api';
import { createLogger, ObjectStore, resultsPrefix, studyOriginalsPrefix } from '@btd/shared';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { startApiEnv, type ApiTestEnv } from './api-test-env.js';
import { startDeleteRefusingProxy, startTestS3, useRedisServers, type TestS3 } from './helpers/index.js';

const slices = mriSlices('yes', 2);
const sweepLog = createLogger({ name: 'left-originals-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });

/** The API's record keys the test left, outside the queues. */
const apiKeys = async (env: ApiTestEnv) => (await env.redisKeys()).filter((key) => key.includes(':api:'));

interface LogLine {
  level: number;
  msg: string;
  studyId?: string;
  bucket?: string;
  prefix?: string;
  prefixes?: string[];
  entry?: string;
  tries?: number;
}

/** Registered first, so that its servers stop after the clean-ups below (after-each hooks run last first). */
const startRedis = useRedisServers();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An API whose log lines the test reads. */
async function startLoggedApi(s3: TestS3, overrides: Record<string, string> = {}): Promise<{ env: ApiTestEnv; lines: LogLine[] }> {
  const lines: LogLine[] = [];
  const env = await startApiEnv(s3, overrides, pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }));
  cleanups.push(env.close);
  return { env, lines };
}

/**
 * Submits a study of two files whose first original is stored and whose second meets S3 stopped,
 * so that the failed submission's undo finds S3 down too; resolves with its answer.
 */
async function submitIntoOutage(env: ApiTestEnv, s3: TestS3, alsoDown?: () => Promise<void>) {
  const store = env.api.ctx.objectStore;
  const put = store.put.bind(store);
  let first: ReturnType<typeof put> | undefined;
  store.put = async (...args: Parameters<typeof put>) => {
    if (!first) return (first = put(...args));
    await first;
    await s3.stop();
    await alsoDown?.();
    return put(...args);
  };
  try {
    return await call<ErrorBody>(env, 'alice', 'POST', '/v1/studies', { body: studyForm(slices.map(({ name, bytes }) => ({ name, bytes }))) });
  } finally {
    store.put = put;
  }
}

describe('originals of a submission that failed during an S3 outage', () => {
  it('are recorded for the sweep, with a warning naming the bucket and prefix, and removed by it once S3 is back', async () => {
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const { env, lines } = await startLoggedApi(s3);

    const refused = await submitIntoOutage(env, s3);
    expect([refused.status, refused.body.code]).toEqual([503, 's3_unavailable']);
    const left = lines.filter((line) => line.msg.includes('could not remove the originals of a failed submission'));
    expect(left.map((line) => line.level)).toEqual([40]);
    const { studyId } = left[0]!;
    const prefix = studyOriginalsPrefix('alice', studyId!);
    expect(left[0]).toMatchObject({ bucket: env.config.s3Bucket, prefix, msg: expect.stringContaining('the sweep removes them once S3 answers') });
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    expect(await apiKeys(env)).toEqual([env.api.ctx.keys.leftOriginals]);

    // Still down: the sweep keeps them for the next one.
    expect(await sweepLeftOriginals(env.api.ctx, sweepLog)).toEqual([]);
    expect(await apiKeys(env)).toEqual([env.api.ctx.keys.leftOriginals]);

    await s3.restart();
    expect((await env.objectKeys()).filter((key) => key.startsWith(prefix))).toHaveLength(1);
    await sweepLeftOriginals(env.api.ctx, sweepLog);
    expect(await env.objectKeys()).toEqual([]);
    expect(await apiKeys(env)).toEqual([]);
  });

  it('are said to stay in the bucket under their prefix, at error, when Redis cannot record them either', async () => {
    const redis = await startRedis();
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const { env, lines } = await startLoggedApi(s3, { REDIS_URL: redis.url });

    const refused = await submitIntoOutage(env, s3, redis.stop);
    expect(refused.status).toBe(503);
    const left = lines.filter((line) => line.msg.includes('could not remove the originals of a failed submission'));
    expect(left.map((line) => line.level)).toEqual([50]);
    expect(left[0]).toMatchObject({
      bucket: env.config.s3Bucket,
      prefix: studyOriginalsPrefix('alice', left[0]!.studyId!),
      msg: expect.stringContaining('they stay in the bucket under the prefix until removed by hand'),
    });
    // Back for the test's clean-up.
    await startRedis({ port: redis.port });
  }, 60_000);

  it('are tried once per sweep while S3 stays unreachable, not one by one, and all removed once it answers', async () => {
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const { env } = await startLoggedApi(s3);
    const { ctx } = env.api;
    const studyIds = ['stu_left_1', 'stu_left_2', 'stu_left_3'];
    for (const [index, studyId] of studyIds.entries()) {
      await ctx.objectStore.put(`${studyOriginalsPrefix('alice', studyId)}slice.png`, slices[0]!.bytes, 'image/png');
      await env.redis.zadd(ctx.keys.leftOriginals, index, JSON.stringify({ clientId: 'alice', studyId }));
    }
    const store = ctx.objectStore;
    const deletePrefix = store.deletePrefix.bind(store);
    const tried: string[] = [];
    store.deletePrefix = (prefix: string) => {
      tried.push(prefix);
      return deletePrefix(prefix);
    };
    try {
      await s3.stop();
      expect(await sweepLeftOriginals(ctx, sweepLog)).toEqual([]);
      expect(tried).toEqual([studyOriginalsPrefix('alice', 'stu_left_1')]);
      expect(await env.redis.zcard(ctx.keys.leftOriginals)).toBe(3);

      await s3.restart();
      expect((await sweepLeftOriginals(ctx, sweepLog)).map((swept) => [swept.studyId, swept.outcome])).toEqual(studyIds.map((studyId) => [studyId, 'removed']));
      expect(await env.objectKeys()).toEqual([]);
      expect(await env.redis.zcard(ctx.keys.leftOriginals)).toBe(0);
    } finally {
      store.deletePrefix = deletePrefix;
    }
  }, 60_000);

  it('that S3 refuses for another reason than an outage are put aside and the others removed; given up at error and counted after the last try', async () => {
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const { env } = await startLoggedApi(s3);
    const { ctx } = env.api;
    const refusedPrefix = studyOriginalsPrefix('alice', 'stu_refused');
    const entries = [
      JSON.stringify({ clientId: 'alice', studyId: 'stu_refused' }),
      JSON.stringify({ clientId: 'alice', studyId: '../stu_elsewhere' }),
      'not an entry',
      JSON.stringify({ clientId: 'alice', studyId: 'stu_left_2' }),
      JSON.stringify({ clientId: 'alice', studyId: 'stu_left_3' }),
    ];
    for (const [index, entry] of entries.entries()) await env.redis.zadd(ctx.keys.leftOriginals, index, entry);
    for (const studyId of ['stu_refused', 'stu_left_2', 'stu_left_3']) {
      await ctx.objectStore.put(`${studyOriginalsPrefix('alice', studyId)}slice.png`, slices[0]!.bytes, 'image/png');
    }
    // S3 answers the removal of the first with NoSuchBucket (404): refused, and no outage.
    const elsewhere = new ObjectStore({ ...env.config, s3Bucket: 'btd-no-such-bucket' });
    cleanups.push(async () => elsewhere.close());
    const store = ctx.objectStore;
    const deletePrefix = store.deletePrefix.bind(store);
    const tried: string[] = [];
    store.deletePrefix = (prefix: string) => {
      tried.push(prefix);
      return prefix === refusedPrefix ? elsewhere.deletePrefix(prefix) : deletePrefix(prefix);
    };
    const lines: LogLine[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    try {
      expect((await sweepLeftOriginals(ctx, log)).map((swept) => swept.studyId)).toEqual(['stu_left_2', 'stu_left_3']);
      expect(await env.objectKeys()).toEqual([`${refusedPrefix}slice.png`]);
      const dropped = lines.filter((line) => line.msg.includes('it names no originals to remove'));
      expect(dropped.map((line) => [line.level, line.entry])).toEqual([
        [50, entries[1]],
        [50, entries[2]],
      ]);
      expect(lines.filter((line) => line.prefix === refusedPrefix).map((line) => [line.level, line.tries])).toEqual([[40, 1]]);

      // Put aside: the next sweep leaves it, the ones after try it again until its last try.
      tried.length = 0;
      expect(await sweepLeftOriginals(ctx, log)).toEqual([]);
      expect(tried).toEqual([]);
      for (let day = 1; day < LEFT_ORIGINALS_MAX_TRIES; day++) {
        expect(await env.redis.zcard(ctx.keys.leftOriginals)).toBe(1);
        expect(await sweepLeftOriginals(ctx, log, { now: Date.now() + day * 86_400_000 })).toEqual([]);
      }
      expect(tried).toHaveLength(LEFT_ORIGINALS_MAX_TRIES - 1);
      expect(await env.redis.zcard(ctx.keys.leftOriginals)).toBe(0);
      const gaveUp = lines.filter((line) => line.prefix === refusedPrefix && line.level >= 50);
      expect(gaveUp).toEqual([
        expect.objectContaining({ bucket: env.config.s3Bucket, tries: LEFT_ORIGINALS_MAX_TRIES, msg: expect.stringContaining('until removed by hand') }),
      ]);
      const metrics = await call<string>(env, null, 'GET', '/metrics');
      expect(metrics.body).toContain('btd_left_originals_dropped_total{reason="refused"} 1');
      expect(metrics.body).toContain('btd_left_originals_dropped_total{reason="malformed"} 2');
    } finally {
      store.deletePrefix = deletePrefix;
    }
  }, 60_000);

  it('whose DeleteObjects answer refuses one key (AccessDenied) stay listed for the sweep, put aside, not struck off as removed', async () => {
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const proxy = await startDeleteRefusingProxy(s3.endpoint);
    cleanups.push(proxy.close);
    const { env } = await startLoggedApi(s3, { S3_ENDPOINT: proxy.endpoint });
    const { ctx } = env.api;
    const prefix = studyOriginalsPrefix('alice', 'stu_denied');
    await env.redis.zadd(ctx.keys.leftOriginals, 0, JSON.stringify({ clientId: 'alice', studyId: 'stu_denied' }));
    for (const name of ['a.png', 'b.png']) await ctx.objectStore.put(`${prefix}${name}`, slices[0]!.bytes, 'image/png');
    proxy.refuse([{ key: `${prefix}b.png` }]);

    expect(await sweepLeftOriginals(ctx, sweepLog)).toEqual([]);
    const [entry] = await env.redis.zrange(ctx.keys.leftOriginals, '0', '-1');
    expect(JSON.parse(entry!)).toEqual({ clientId: 'alice', studyId: 'stu_denied', tries: 1 });

    proxy.refuse([]);
    const swept = await sweepLeftOriginals(ctx, sweepLog, { now: Date.now() + 86_400_000 });
    expect(swept).toEqual([{ studyId: 'stu_denied', prefix, outcome: 'removed' }]);
    expect(await env.objectKeys()).toEqual([]);
  });

  it('are only struck off when their study exists, which keeps them', async () => {
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const { env } = await startLoggedApi(s3);
    const accepted = await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', { body: studyForm([slices[0]!]) });
    expect(accepted.status).toBe(202);
    const { studyId } = accepted.body;
    await env.redis.zadd(env.api.ctx.keys.leftOriginals, Date.now(), JSON.stringify({ clientId: 'alice', studyId }));
    const before = await env.objectKeys();

    expect(await sweepLeftOriginals(env.api.ctx, sweepLog)).toEqual([{ studyId, prefix: studyOriginalsPrefix('alice', studyId), outcome: 'kept' }]);
    expect(await env.objectKeys()).toEqual(before);
    expect(await env.redis.zcard(env.api.ctx.keys.leftOriginals)).toBe(0);
  });
});

describe('results of a study erased while analysed that S3 would not delete again', () => {
  it('are recorded for the sweep, with a warning naming the prefixes, and deleted by it once S3 is back', async () => {
    const s3 = await startTestS3();
    cleanups.push(s3.close);
    const { env, lines } = await startLoggedApi(s3);
    const { ctx } = env.api;
    // No worker runs: the study stays queued, and is erased unfinished.
    const submitted = await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', { body: studyForm(slices.map(({ name, bytes }) => ({ name, bytes }))) });
    expect(submitted.status).toBe(202);
    const prefixes = submitted.body.images.map((image) => resultsPrefix(image.imageId));
    // A worker writes each image's results just after the first deletion; S3 stops before the second.
    const store = ctx.objectStore;
    const deletePrefix = store.deletePrefix.bind(store);
    const deleted = new Set<string>();
    store.deletePrefix = async (prefix: string) => {
      if (!prefix.startsWith('results/')) return deletePrefix(prefix);
      if (deleted.has(prefix)) {
        if (prefix === prefixes[0]) await s3.stop();
        return deletePrefix(prefix);
      }
      deleted.add(prefix);
      const count = await deletePrefix(prefix);
      await store.put(`${prefix}overlay.png`, slices[0]!.bytes, 'image/png');
      return count;
    };
    try {
      expect((await call(env, 'alice', 'DELETE', `/v1/studies/${submitted.body.studyId}`)).status).toBe(204);
    } finally {
      store.deletePrefix = deletePrefix;
    }
    const warned = lines.filter((line) => line.msg.includes('could not delete again the results of a study erased while analysed'));
    expect(warned).toMatchObject([{ level: 40, studyId: submitted.body.studyId, prefixes, msg: expect.stringContaining('the sweep deletes them once S3 answers') }]);
    expect(await env.redis.zcard(ctx.keys.leftOriginals)).toBe(2);

    await s3.restart();
    expect((await env.objectKeys()).sort()).toEqual(prefixes.map((prefix) => `${prefix}overlay.png`).sort());
    const swept = await sweepLeftOriginals(ctx, sweepLog);
    expect(swept.map((entry) => [entry.prefix, entry.outcome]).sort()).toEqual(prefixes.map((prefix) => [prefix, 'removed']).sort());
    expect(await env.objectKeys()).toEqual([]);
    expect(await apiKeys(env)).toEqual([]);
  });
});
