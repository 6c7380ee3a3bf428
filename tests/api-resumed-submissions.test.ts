import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SUBMISSION_LEASE_MS, sweepPendingSubmissions, type BatchView, type ErrorBody, type SubmittedStudy } from '@btd/api';
import { createLogger } from '@btd/shared';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { elapse, holdNextEnqueue, killedSubmission, pendingStudy, type KilledRequest } from './api-killed-submission.js';

const harness = useApiHarness();
const [slice] = mriSlices('yes', 1);
const log = createLogger({ name: 'resume-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });

/** Longer than a live submission may take: its request is taken to be dead. */
const LATER_MS = SUBMISSION_LEASE_MS + 60_000;

const ctx = () => harness.env.api.ctx;
const sweepNow = () => sweepPendingSubmissions(ctx(), log, { olderThanMs: 0 });
const pending = () => harness.env.redis.zrange(ctx().keys.pendingSubmissions, 0, '-1');

/** alice's submission of the slice, as the killed request sent it. */
function retry(request: Omit<KilledRequest, 'withOriginal'>, path = '/v1/studies') {
  const fields: Record<string, string> = request.externalId ? { externalId: request.externalId } : {};
  const headers: Record<string, string> = request.idempotencyKey ? { 'idempotency-key': request.idempotencyKey } : {};
  return call<SubmittedStudy & ErrorBody>(harness.env, 'alice', 'POST', path, { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], fields), headers });
}

/** The ids of alice's studies. */
async function studyIds(): Promise<string[]> {
  const listed = await call<{ items: { studyId: string }[] }>(harness.env, 'alice', 'GET', '/v1/studies');
  return listed.body.items.map((item) => item.studyId);
}

/** Inference jobs in any state, and those completed (each an analysis). */
async function jobs(): Promise<{ all: number; completed: number }> {
  const counts = await ctx().queues.inference.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
  return { all: Object.values(counts).reduce((sum, n) => sum + n, 0), completed: counts.completed ?? 0 };
}

/** Runs a worker until the study is done; it must be analysed exactly once. */
async function expectAnalysedOnce(studyId: string): Promise<void> {
  await harness.startWorker();
  const done = await waitForStudy(harness.env, 'alice', studyId);
  expect([done.state, done.images.map((image) => image.state)]).toEqual(['done', ['done']]);
  expect(await jobs()).toEqual({ all: 1, completed: 1 });
}

describe('a retry of a submission whose API was killed before enqueueing its jobs', () => {
  it('gets the killed submission\'s study under the same Idempotency-Key after its claim would have lapsed, queued and analysed once', async () => {
    const request = { idempotencyKey: randomUUID() };
    const killed = await killedSubmission(harness.env, slice!.bytes, { ...request, withOriginal: true });
    await elapse(harness.env, LATER_MS);

    const answer = await retry(request);
    expect([answer.status, answer.body.studyId, answer.headers.get('idempotent-replayed'), answer.headers.get('location')]).toEqual([
      202,
      killed.id,
      'true',
      `/v1/studies/${killed.id}`,
    ]);
    expect(await pending()).toEqual([]);
    const again = await retry(request);
    expect([again.status, again.body, again.headers.get('idempotent-replayed')]).toEqual([202, answer.body, 'true']);
    expect(await studyIds()).toEqual([killed.id]);
    expect(await jobs()).toEqual({ all: 1, completed: 0 });
    expect(await sweepNow()).toEqual([]);
    await expectAnalysedOnce(killed.id);
  });

  it('stores the original that never reached S3 from the retry\'s own copy', async () => {
    const request = { idempotencyKey: randomUUID() };
    const killed = await killedSubmission(harness.env, slice!.bytes, { ...request, withOriginal: false });
    await elapse(harness.env, LATER_MS);
    expect(await harness.env.objectKeys()).toEqual([]);

    const answer = await retry(request);
    expect([answer.status, answer.body.studyId, answer.headers.get('idempotent-replayed')]).toEqual([202, killed.id, 'true']);
    expect(await harness.env.objectKeys()).toHaveLength(1);
    expect(await studyIds()).toEqual([killed.id]);
    await expectAnalysedOnce(killed.id);
  });

  it('gets the killed submission\'s study, resumed, under the same externalId without a key', async () => {
    const request = { externalId: 'ACC-RESUMED-1' };
    const killed = await killedSubmission(harness.env, slice!.bytes, { ...request, withOriginal: true });
    await elapse(harness.env, LATER_MS);

    const answer = await retry(request);
    expect([answer.status, answer.body.studyId, answer.headers.get('idempotent-replayed')]).toEqual([202, killed.id, 'true']);
    expect(await pending()).toEqual([]);
    expect(await studyIds()).toEqual([killed.id]);
    await expectAnalysedOnce(killed.id);
  });

  it('gets the killed study of a batch, which the batch counts once', async () => {
    const created = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: { externalId: 'RUN-RESUMED' } });
    const request = { idempotencyKey: randomUUID(), batch: { id: created.body.batchId, priority: 'routine' as const } };
    const killed = await killedSubmission(harness.env, slice!.bytes, { ...request, withOriginal: true });
    await elapse(harness.env, LATER_MS);

    const answer = await retry(request, `/v1/batches/${created.body.batchId}/studies`);
    expect([answer.status, answer.body.studyId, answer.headers.get('idempotent-replayed')]).toEqual([202, killed.id, 'true']);
    const batch = await call<BatchView>(harness.env, 'alice', 'GET', `/v1/batches/${created.body.batchId}`);
    expect(batch.body.counts.total).toBe(1);
    await expectAnalysedOnce(killed.id);
  });

  it('is stored afresh once the sweep removed the killed study', async () => {
    const request = { idempotencyKey: randomUUID() };
    const killed = await killedSubmission(harness.env, slice!.bytes, { ...request, withOriginal: false });
    await elapse(harness.env, LATER_MS);
    expect(await sweepNow()).toEqual([{ studyId: killed.id, outcome: 'removed' }]);

    const answer = await retry(request);
    expect([answer.status, answer.headers.get('idempotent-replayed')]).toEqual([202, null]);
    expect(answer.body.studyId).not.toBe(killed.id);
    expect(await studyIds()).toEqual([answer.body.studyId]);
    await expectAnalysedOnce(answer.body.studyId);
  });

  it('resumes the study once when retries race each other and the sweep', async () => {
    const request = { idempotencyKey: randomUUID() };
    const killed = await killedSubmission(harness.env, slice!.bytes, { ...request, withOriginal: true });
    await elapse(harness.env, LATER_MS);

    const [swept, ...answers] = await Promise.all([sweepNow(), ...Array.from({ length: 4 }, () => retry(request))]);
    expect(answers.map((answer) => [answer.status, answer.body.studyId])).toEqual(Array(4).fill([202, killed.id]));
    expect(swept.map((settled) => settled.outcome).filter((outcome) => outcome === 'removed')).toEqual([]);
    expect(await studyIds()).toEqual([killed.id]);
    await expectAnalysedOnce(killed.id);
  });

  it('keeps the study a retry resumed when the stopped request fails after all', async () => {
    const request = { idempotencyKey: randomUUID(), externalId: 'ACC-RESUMED-3' };
    const held = holdNextEnqueue(harness.env);
    const first = retry(request);
    const studyId = await pendingStudy(harness.env);
    try {
      await elapse(harness.env, LATER_MS);
      const answer = await retry(request);
      expect([answer.status, answer.body.studyId, answer.headers.get('idempotent-replayed')]).toEqual([202, studyId, 'true']);
    } finally {
      held.fail();
    }
    expect((await first).status).toBeGreaterThanOrEqual(500);
    expect(await ctx().externalIds.lookup('alice', 'ACC-RESUMED-3')).toBe(studyId);
    expect(await harness.env.objectKeys()).toHaveLength(1);
    expect(await studyIds()).toEqual([studyId]);
    await expectAnalysedOnce(studyId);
  });
});
