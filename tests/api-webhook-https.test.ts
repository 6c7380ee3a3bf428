import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startApi, type BatchView, type StudyView, type SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { waitFor } from './helpers/index.js';

// Stored while the rule is off: URLs in clear are accepted at submission.
const harness = useApiHarness({ WEBHOOK_REQUIRE_HTTPS: 'false' });

describe('WEBHOOK_REQUIRE_HTTPS at delivery', () => {
  it('sends no webhook in clear that was stored while the rule was off, once an API with the rule on delivers it: the delivery fails for good, saying why', async () => {
    const receiver = await harness.startReceiver();
    // localhost is another machine to the rule (only a loopback address written as such is exempt),
    // while the addresses allowed (WEBHOOK_ALLOWED_NETWORKS 127.0.0.1/32) let its request through.
    const inClear = `http://localhost:${new URL(receiver.url).port}`;
    const batch = await call<BatchView>(harness.env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl: `${inClear}/batch` } });
    expect(batch.status).toBe(201);
    const [slice] = mriSlices('yes', 1);
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', `/v1/batches/${batch.body.batchId}/studies`, {
      body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { callbackUrl: `${inClear}/study` }),
    });
    expect(submitted.status).toBe(202);
    expect((await call(harness.env, 'alice', 'POST', `/v1/batches/${batch.body.batchId}/close`)).status).toBe(200);
    await harness.env.api.close();

    // The operator turns the rule on; the study completes under the new settings.
    const lines: { msg?: string; deliveryId?: string; reason?: string }[] = [];
    const log = new PassThrough();
    log.on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n').map((line) => JSON.parse(line) as (typeof lines)[number])));
    const strict = await startApi({ ...harness.env.config, webhookRequireHttps: true }, pino({ level: 'warn' }, log));
    try {
      await harness.startWorker();
      const env = { ...harness.env, url: strict.url };
      const study = await waitForStudy(env, 'alice', submitted.body.studyId, (s) => s.webhook?.failedAt !== undefined);
      const closed = await waitFor(async () => {
        const view = (await call<BatchView>(env, 'alice', 'GET', `/v1/batches/${batch.body.batchId}`)).body;
        return view.webhook?.failedAt ? view : undefined;
      }, { what: 'the batch webhook to fail' });

      for (const webhook of [study.webhook, closed.webhook] as StudyView['webhook'][]) {
        expect(webhook).toMatchObject({ attempts: 0 });
        expect(webhook?.deliveredAt).toBeUndefined();
        expect(webhook?.failedReason).toMatch(/not sent, the settings in force refuse its callbackUrl: .*must be an https URL.*\(WEBHOOK_REQUIRE_HTTPS\)$/);
      }
      // No retries: each job failed at its first and only attempt, and said so once in the log.
      const jobs = await strict.ctx.queues.webhooks.getJobs(['failed', 'delayed', 'waiting', 'active', 'completed']);
      expect(jobs.map((job) => [job.data.deliveryId, job.finishedOn !== undefined, job.attemptsMade]).sort()).toEqual([
        [`batch-${batch.body.batchId}`, true, 1],
        [`study-${submitted.body.studyId}`, true, 1],
      ]);
      const refusals = lines.filter((line) => line.msg === 'webhook not sent: callbackUrl refused');
      expect(refusals.map((line) => line.deliveryId).sort()).toEqual([`batch-${batch.body.batchId}`, `study-${submitted.body.studyId}`]);
      expect(receiver.received).toEqual([]);
    } finally {
      await strict.close();
    }
  });
});
