import { describe, expect, it } from 'vitest';
import { createLogger } from '@btd/shared';
import { sweepRetention, type BatchView, type SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { startApiEnv, type ApiTestEnv } from './api-test-env.js';

const harness = useApiHarness({ STUDY_RETENTION_DAYS: '30' });
const log = createLogger({ name: 'retention-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });
const DAY_MS = 24 * 3600_000;

async function submit(env: ApiTestEnv, path = '/v1/studies'): Promise<SubmittedStudy> {
  const [slice] = mriSlices('no', 1);
  const answer = await call<SubmittedStudy>(env, 'alice', 'POST', path, { body: studyForm([{ name: slice!.name, bytes: slice!.bytes }]) });
  expect(answer.status).toBe(202);
  return answer.body;
}

/** A finished study outside batches, a batch of one finished study, and a study left queued (no worker). */
async function studies(env: ApiTestEnv) {
  const worker = await harness.startWorker();
  const plain = await submit(env);
  const batch = (await call<BatchView>(env, 'alice', 'POST', '/v1/batches', { body: {} })).body;
  const inBatch = await submit(env, `/v1/batches/${batch.batchId}/studies`);
  await call(env, 'alice', 'POST', `/v1/batches/${batch.batchId}/close`);
  for (const study of [plain, inBatch]) await waitForStudy(env, 'alice', study.studyId);
  await worker.close();
  const queued = await submit(env);
  return { plain, batch, inBatch, queued };
}

const status = async (env: ApiTestEnv, path: string) => (await call(env, 'alice', 'GET', path)).status;

describe('STUDY_RETENTION_DAYS', () => {
  it('erases the finished studies older than the retention, and the batch whose studies all went; keeps the newer and the unfinished', async () => {
    const { env } = harness;
    // A first sweep lists the studies finished earlier (none): the ones below are listed as they finish.
    expect(await sweepRetention(env.api.ctx, log)).toEqual({ studies: [], batches: [] });
    const { plain, batch, inBatch, queued } = await studies(env);

    expect(await sweepRetention(env.api.ctx, log)).toEqual({ studies: [], batches: [] });
    expect(await status(env, `/v1/studies/${plain.studyId}`)).toBe(200);

    const swept = await sweepRetention(env.api.ctx, log, { now: Date.now() + 31 * DAY_MS });
    expect(swept.studies.sort()).toEqual([plain.studyId, inBatch.studyId].sort());
    expect(swept.batches).toEqual([batch.batchId]);
    expect(await status(env, `/v1/studies/${plain.studyId}`)).toBe(404);
    expect(await status(env, `/v1/studies/${inBatch.studyId}`)).toBe(404);
    expect(await status(env, `/v1/batches/${batch.batchId}`)).toBe(404);
    expect(await status(env, `/v1/studies/${queued.studyId}`)).toBe(200);
    const ids = [plain, inBatch].flatMap((study) => [study.studyId, ...study.images.map((image) => image.imageId)]);
    expect((await env.objectKeys()).filter((key) => ids.some((id) => key.includes(id)))).toEqual([]);
    const keys = (await env.redisKeys()).filter((key) => [...ids, batch.batchId].some((id) => key.includes(id)) && !/:(inference|results):/.test(key));
    expect(keys).toEqual([]);
    expect(await env.redis.zrange(env.api.ctx.keys.finishedStudies, '0', '-1')).toEqual([]);
    const metrics = await call<string>(env, null, 'GET', '/metrics');
    expect(metrics.body).toMatch(/btd_studies_erased_total\{trigger="retention",outcome="erased"\} 2/);

    expect(await sweepRetention(env.api.ctx, log, { now: Date.now() + 31 * DAY_MS })).toEqual({ studies: [], batches: [] });
  });

  it('erases studies that finished before their list was kept, found through the clients’ indexes', async () => {
    const { env } = harness;
    const { plain, inBatch, queued } = await studies(env);
    // As a deployment that ran an earlier release holds them: finished, but in no list of finished studies.
    await env.redis.del(env.api.ctx.keys.finishedStudies);
    const swept = await sweepRetention(env.api.ctx, log, { now: Date.now() + 31 * DAY_MS });
    expect(swept.studies.sort()).toEqual([plain.studyId, inBatch.studyId].sort());
    expect(await status(env, `/v1/studies/${queued.studyId}`)).toBe(200);
  });

  it('counts the retention from when a study finished, not from its submission: one that waited long in the queue is kept after it finishes', async () => {
    const { env } = harness;
    const study = await submit(env);
    // Submitted 40 days ago (its workers were away since), it finishes now.
    const submittedAt = Date.now() - 40 * DAY_MS;
    await env.redis.hset(env.api.ctx.keys.study(study.studyId), 'createdAt', new Date(submittedAt).toISOString());
    await env.redis.zadd(env.api.ctx.keys.clientStudies('alice'), 'XX', submittedAt, study.studyId);
    await harness.startWorker();
    await waitForStudy(env, 'alice', study.studyId);
    expect(await sweepRetention(env.api.ctx, log)).toEqual({ studies: [], batches: [] });
    // Found through the client's index too, as a study finished under an earlier release.
    await env.redis.del(env.api.ctx.keys.finishedStudies, env.api.ctx.keys.finishedStudiesIndexed);
    expect(await sweepRetention(env.api.ctx, log)).toEqual({ studies: [], batches: [] });
    expect(await status(env, `/v1/studies/${study.studyId}`)).toBe(200);
    expect((await sweepRetention(env.api.ctx, log, { now: Date.now() + 31 * DAY_MS })).studies).toEqual([study.studyId]);
  });

  it('keeps every study when STUDY_RETENTION_DAYS is 0, as by default', async () => {
    const env = await startApiEnv(harness.s3, { STUDY_RETENTION_DAYS: '0' });
    try {
      expect(env.config.studyRetentionDays).toBe(0);
      const study = await submit(env);
      expect(await sweepRetention(env.api.ctx, log, { now: Date.now() + 365_000 * DAY_MS })).toEqual({ studies: [], batches: [] });
      expect(await status(env, `/v1/studies/${study.studyId}`)).toBe(200);
    } finally {
      await env.close();
    }
  });
});
