import { describe, expect, it } from 'vitest';
import { recordKeys, startApi, type SubmittedStudy } from '@btd/api';
import {
  RESULTS_QUEUE,
  RESULT_JOB_NAME,
  WEBHOOKS_QUEUE,
  createLogger,
  createResultsQueue,
  createWebhooksQueue,
  enqueueWebhook,
  postResult,
  resultJobId,
} from '@btd/shared';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { dyingWorker, waitFor } from './helpers/index.js';

const harness = useApiHarness();

describe('results consumer', () => {
  it('applies results that arrived while the API was down once it is back', async () => {
    const [slice] = mriSlices('yes', 1);
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]) });
    await harness.env.api.close();

    await harness.startWorker();
    const results = createResultsQueue(harness.env.redis, harness.env.prefix);
    await waitFor(async () => (await results.getWaitingCount()) === 1 || undefined, { what: 'a result waiting for the API' });
    await results.close();

    // A second API process on the same queues and bucket picks the result up.
    const again = await startApi(harness.env.config, createLogger({ name: 'api-test', level: 'silent', pretty: false }));
    try {
      const done = await waitForStudy({ ...harness.env, url: again.url }, 'alice', submitted.body.studyId);
      expect(done.state).toBe('done');
    } finally {
      await again.close();
    }
  });

  it('applies a result that two API processes in turn died holding, instead of failing it as stalled', async () => {
    const [slice] = mriSlices('yes', 1);
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]) });
    await harness.env.api.close();
    const { studyId, images } = submitted.body;
    const imageId = images[0]!.imageId;
    const results = createResultsQueue(harness.env.redis, harness.env.prefix);
    await postResult(results, { kind: 'failed', studyId, imageId, clientId: 'alice', finishedAt: new Date().toISOString(), reason: 'not a decodable image' });

    // Each process takes the result and dies holding it: its lock lapses, and a stall check finds it.
    const dying = dyingWorker(harness.env.redis, RESULTS_QUEUE, harness.env.prefix, 10);
    try {
      expect(await dying.takeAndDie('first-api')).toBe(resultJobId(imageId));
      await dying.checkStalled();
      await dying.checkStalled(); // stalled once: back to waiting
      expect(await dying.takeAndDie('second-api')).toBe(resultJobId(imageId));
      await dying.checkStalled(); // marked; the next API's first check finds it stalled a second time
    } finally {
      await dying.close();
    }
    await harness.env.redis.del(`${harness.env.prefix}:${RESULTS_QUEUE}:stalled-check`);

    const again = await startApi(harness.env.config, createLogger({ name: 'api-test', level: 'silent', pretty: false }));
    try {
      const finished = async () => {
        const job = await results.getJob(resultJobId(imageId));
        return job?.finishedOn ? job : undefined;
      };
      const job = await waitFor(finished, { what: 'the result job to finish' });
      expect([await job.getState(), job.failedReason]).toEqual(['completed', undefined]);
      const study = await waitForStudy({ ...harness.env, url: again.url }, 'alice', studyId);
      expect([study.state, study.failure?.reason]).toEqual(['failed', 'not a decodable image']);
    } finally {
      await again.close();
      await results.close();
    }
  });

  it('applies a redelivered result once: counts, metrics and webhooks are not doubled', async () => {
    const receiver = await harness.startReceiver();
    const created = await call<{ batchId: string }>(harness.env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl: `${receiver.url}/batch` } });
    const { batchId } = created.body;
    const [slice] = mriSlices('no', 1);
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, {
      body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { callbackUrl: `${receiver.url}/study` }),
    });
    await call(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/close`);
    await harness.startWorker();
    await waitForStudy(harness.env, 'alice', submitted.body.studyId);
    await receiver.waitFor(1, '/batch');
    await receiver.waitFor(1, '/study');

    const results = harness.env.api.ctx.queues.results;
    const [original] = await results.getJobs(['completed']);
    // The same message again under another job id, as after a crash between posting and acknowledging.
    const replay = await results.add(RESULT_JOB_NAME, original!.data, { jobId: `replay-${original!.id}` });
    await waitFor(async () => (await replay.getState()) === 'completed' || undefined, { what: 'the replay to be applied' });

    const batch = await call<{ counts: Record<string, number>; state: string }>(harness.env, 'alice', 'GET', `/v1/batches/${batchId}`);
    expect(batch.body.counts).toEqual({ total: 1, queued: 0, processing: 0, done: 1, failed: 0 });
    const metrics = await (await fetch(`${harness.env.url}/metrics`)).text();
    const applied = [...metrics.matchAll(/^btd_results_total\{label="[^"]+"\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
    expect(applied).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received.map((hook) => hook.path).sort()).toEqual(['/batch', '/study']);
  });
});

describe('webhook sender', () => {
  it('marks no delivery failed that does not exist, as when a job names one that is gone', async () => {
    const { prefix, redis } = harness.env;
    const deliveryId = `delivery-gone-${Date.now()}`;
    await harness.env.api.ctx.deliveries.markFailed(deliveryId, `delivery ${deliveryId} does not exist`);
    expect(await redis.exists(recordKeys(prefix).delivery(deliveryId))).toBe(0);
  });

  it('marks a delivery failed, with the reason, when its job fails for stalling too often', async () => {
    await harness.env.api.close();
    const { prefix, redis } = harness.env;
    const deliveryId = `delivery-${Date.now()}`;
    const key = recordKeys(prefix).delivery(deliveryId);
    await redis.hset(key, { id: deliveryId, clientId: 'alice', event: 'study.completed', url: 'https://hooks.example/study', body: '{}', attempts: '0' });
    const webhooks = createWebhooksQueue(redis, prefix);
    const job = await enqueueWebhook(webhooks, deliveryId);

    // An API process takes the delivery and dies holding it, once more than its stall count allows:
    // the stall check (a checker allowing no stall, so that one is enough) marks it to fail when next taken.
    const dying = dyingWorker(redis, WEBHOOKS_QUEUE, prefix, 0);
    try {
      expect(await dying.takeAndDie('dying-api')).toBe(job.id);
      await dying.checkStalled();
      await dying.checkStalled();
    } finally {
      await dying.close();
    }

    const again = await startApi(harness.env.config, createLogger({ name: 'api-test', level: 'silent', pretty: false }));
    try {
      const failed = await waitFor(async () => ((await webhooks.getJob(job.id!))?.finishedOn ? webhooks.getJob(job.id!) : undefined), { what: 'the delivery job to fail' });
      expect([await failed!.getState(), failed!.failedReason]).toEqual(['failed', 'job stalled more than allowable limit']);
      const delivery = await waitFor(async () => {
        const fields = await redis.hgetall(key);
        return fields.failedAt ? fields : undefined;
      }, { what: 'the delivery to be marked failed', timeoutMs: 5000 });
      expect(delivery.failedReason).toBe('job stalled more than allowable limit');
      expect(delivery.deliveredAt).toBeUndefined();
    } finally {
      await again.close();
      await webhooks.close();
    }
  });
});
