import { describe, expect, it } from 'vitest';
import { sweepPendingSubmissions, type ErrorBody, type RunningApi, type StudyView, type SubmittedStudy } from '@btd/api';
import { createLogger, inferenceJobId } from '@btd/shared';
import { mriSlices } from './api-fixtures.js';
import { killedSubmission as killed, type KilledRequest } from './api-killed-submission.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';

const harness = useApiHarness();
const [slice] = mriSlices('yes', 1);
const log = createLogger({ name: 'sweep-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });

type Ctx = RunningApi['ctx'];

const ctx = (): Ctx => harness.env.api.ctx;
const sweepNow = () => sweepPendingSubmissions(ctx(), log, { olderThanMs: 0 });
const pending = () => harness.env.redis.zrange(ctx().keys.pendingSubmissions, 0, '-1');
const killedSubmission = (request: KilledRequest) => killed(harness.env, slice!.bytes, request);

describe('pending submissions', () => {
  it('enqueues the jobs of a study whose API was killed before it could, and the study then finishes', async () => {
    const study = await killedSubmission({ externalId: 'ACC-KILLED-1', withOriginal: true });

    expect(await sweepNow()).toEqual([{ studyId: study.id, outcome: 'enqueued' }]);
    expect(await ctx().queues.inference.getJob(inferenceJobId(study.imageIds[0]!))).toBeDefined();
    expect(await pending()).toEqual([]);
    expect(await sweepNow()).toEqual([]);

    await harness.startWorker();
    const done = await waitForStudy(harness.env, 'alice', study.id);
    expect(done.state).toBe('done');
    expect(done.images.map((image) => image.state)).toEqual(['done']);
    expect(await ctx().externalIds.lookup('alice', 'ACC-KILLED-1')).toBe(study.id);
  });

  it('removes a study whose original never reached S3 and frees its externalId', async () => {
    const study = await killedSubmission({ externalId: 'ACC-KILLED-2', withOriginal: false });

    expect(await sweepNow()).toEqual([{ studyId: study.id, outcome: 'removed' }]);
    expect(await pending()).toEqual([]);
    expect((await call(harness.env, 'alice', 'GET', `/v1/studies/${study.id}`)).status).toBe(404);
    expect(await ctx().externalIds.lookup('alice', 'ACC-KILLED-2')).toBeUndefined();
    expect((await harness.env.redisKeys()).filter((key) => key.includes(':api:'))).toEqual([]);

    const again = await call<SubmittedStudy & ErrorBody>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { externalId: 'ACC-KILLED-2' }),
    });
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(again.body.studyId).not.toBe(study.id);
    expect(await ctx().externalIds.lookup('alice', 'ACC-KILLED-2')).toBe(again.body.studyId);
  });

  it('leaves no pending entry after a normal submission, and a sweep changes nothing', async () => {
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { externalId: 'ACC-LIVE' }),
    });
    expect(submitted.status).toBe(202);
    expect(await pending()).toEqual([]);
    const jobs = () => ctx().queues.inference.getJobCountByTypes('waiting', 'prioritized', 'active', 'completed', 'failed');
    const view = async () => (await call<StudyView>(harness.env, 'alice', 'GET', `/v1/studies/${submitted.body.studyId}`)).body;
    const before = { jobs: await jobs(), view: await view(), objects: await harness.env.objectKeys() };
    expect(before.jobs).toBe(1);

    expect(await sweepNow()).toEqual([]);
    // An entry whose removal failed after the jobs were enqueued is only dropped.
    await harness.env.redis.zadd(ctx().keys.pendingSubmissions, Date.now(), submitted.body.studyId);
    expect(await sweepNow()).toEqual([{ studyId: submitted.body.studyId, outcome: 'submitted' }]);
    expect(await pending()).toEqual([]);
    expect({ jobs: await jobs(), view: await view(), objects: await harness.env.objectKeys() }).toEqual(before);
    expect(await ctx().externalIds.lookup('alice', 'ACC-LIVE')).toBe(submitted.body.studyId);
  });
});
