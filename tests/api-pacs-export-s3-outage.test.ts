import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SubmittedStudy } from '@btd/api';
import { WEBHOOK_JOB_NAME, outageStartOf, webhookJobId } from '@btd/shared';
import { describe, expect, it } from 'vitest';
import { PACS_EXPORT_EVENT } from '../services/api/src/dicom-results/pacs-export.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from './api-webhook-receiver.js';
import { sleep, waitFor } from './helpers/index.js';

/** How long an export waits out one outage: far longer than its retries below, short enough to outlast. */
const BUDGET_MS = 2000;
/** Two attempts 100 ms apart: the whole retry span an outage would have to outlast is a tenth of a second. */
const SHORT_RETRIES = { attempts: 2, backoff: { type: 'fixed', delay: 100 } } as const;

const harness = useApiHarness({ PACS_EXPORT_S3_OUTAGE_BUDGET_MS: String(BUDGET_MS) });

const series = readFileSync(new URL('./fixtures/dicom/rle-3-frames.dcm', import.meta.url));

/** A finished study of one multi-frame DICOM file, analysed by an inference worker: what an export sends. */
async function finishedStudy(): Promise<string> {
  await harness.startWorker();
  const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
    body: studyForm([{ name: 'series.dcm', bytes: series, type: 'application/dicom' }]),
  });
  expect(submitted.status).toBe(202);
  expect((await waitForStudy(harness.env, 'alice', submitted.body.studyId)).state).toBe('done');
  return submitted.body.studyId;
}

/** Queues the export of a study to `pacs` as a finished study's is queued, but with {@link SHORT_RETRIES}. */
async function queueExport(studyId: string, pacs: WebhookReceiver): Promise<{ deliveryId: string; jobId: string }> {
  const { ctx } = harness.env.api;
  const deliveryId = `pacs-${randomUUID()}`;
  await ctx.deliveries.createOnce({ id: deliveryId, clientId: 'alice', event: PACS_EXPORT_EVENT, url: `${pacs.url}/studies`, body: JSON.stringify({ studyId }) }, { studyId });
  const job = await ctx.queues.webhooks.add(WEBHOOK_JOB_NAME, { deliveryId }, { jobId: webhookJobId(deliveryId), ...SHORT_RETRIES });
  return { deliveryId, jobId: job.id as string };
}

async function jobOf(jobId: string) {
  const job = await harness.env.api.ctx.queues.webhooks.getJob(jobId);
  if (!job) throw new Error(`job ${jobId} is gone`);
  return job;
}

async function deliveryOf(deliveryId: string) {
  const delivery = await harness.env.api.ctx.deliveries.get(deliveryId);
  if (!delivery) throw new Error(`delivery ${deliveryId} is gone`);
  return delivery;
}

async function metricValue(name: string): Promise<number | undefined> {
  const metric = (await harness.env.api.ctx.metrics.registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  return metric?.values[0]?.value;
}

describe('PACS export during an S3 outage', () => {
  it('waits out an outage far longer than its retry span without spending an attempt, then exports', async () => {
    const studyId = await finishedStudy();
    const pacs = await harness.startReceiver();
    await harness.s3.stop();
    const outageStarted = Date.now();
    let queued: { deliveryId: string; jobId: string };
    try {
      queued = await queueExport(studyId, pacs);
      // Taken, found S3 down and put back, twice over (or, wrongly, failed for good).
      await waitFor(
        async () => {
          const job = await jobOf(queued.jobId);
          return job.attemptsStarted >= 2 || job.finishedOn !== undefined;
        },
        { what: 'the export to be tried twice' },
      );
      await sleep(Math.max(0, outageStarted + 1500 - Date.now()));
      const waiting = await jobOf(queued.jobId);
      expect([waiting.attemptsMade, waiting.failedReason, waiting.finishedOn]).toEqual([0, undefined, undefined]);
      expect(outageStartOf(waiting)).toBeGreaterThanOrEqual(outageStarted);
      expect(await deliveryOf(queued.deliveryId)).not.toHaveProperty('failedAt');
      expect(await metricValue('btd_pacs_export_s3_unavailable')).toBe(1);
      expect(await metricValue('btd_pacs_export_s3_deferrals_total')).toBeGreaterThanOrEqual(2);
      expect(pacs.received).toEqual([]);
    } finally {
      await harness.s3.restart();
    }
    await pacs.waitFor(1, '/studies', 15_000);
    const delivered = await waitFor(async () => {
      const delivery = await deliveryOf(queued.deliveryId);
      return delivery.deliveredAt ? delivery : undefined;
    }, { what: 'the export to be recorded' });
    expect(delivered.attempts).toBe(1);
    await waitFor(async () => (await jobOf(queued.jobId)).finishedOn !== undefined, { what: 'the job to be recorded as completed' });
    expect(await harness.env.api.ctx.queues.webhooks.getJobState(queued.jobId)).toBe('completed');
    expect(await metricValue('btd_pacs_export_s3_unavailable')).toBe(0);
  });

  it('gives a later outage a whole budget once the export got through to S3 in between', async () => {
    const studyId = await finishedStudy();
    // The PACS takes longer to answer than the budget, and refuses the first export.
    const pacs = await startWebhookReceiver([503], BUDGET_MS + 500);
    try {
      await harness.s3.stop();
      let queued: { deliveryId: string; jobId: string };
      let firstOutage: number;
      try {
        queued = await queueExport(studyId, pacs);
        const deferred = await waitFor(
          async () => {
            const job = await jobOf(queued.jobId);
            return (outageStartOf(job) !== undefined || job.finishedOn !== undefined) && job;
          },
          { what: 'the export to be deferred' },
        );
        firstOutage = outageStartOf(deferred) ?? expect.unreachable('the export failed instead of waiting for S3');
      } finally {
        await harness.s3.restart();
      }
      // Built from S3 and sent: while the PACS takes its time, S3 goes down again, and the retry
      // after the PACS's refusal finds it down, longer after the first outage began than the budget.
      await pacs.waitFor(1, '/studies', 10_000);
      await harness.s3.stop();
      try {
        const waiting = await waitFor(
          async () => {
            const job = await jobOf(queued.jobId);
            return ((outageStartOf(job) ?? 0) > firstOutage || job.finishedOn !== undefined) && job;
          },
          { what: 'the retry to find S3 down' },
        );
        expect(Date.now() - firstOutage).toBeGreaterThan(BUDGET_MS);
        expect([waiting.attemptsMade, waiting.finishedOn]).toEqual([1, undefined]);
        expect(await deliveryOf(queued.deliveryId)).toMatchObject({ lastStatus: 503 });
        expect(await deliveryOf(queued.deliveryId)).not.toHaveProperty('failedAt');
      } finally {
        await harness.s3.restart();
      }
      await pacs.waitFor(2, '/studies', 15_000);
      await waitFor(async () => (await deliveryOf(queued.deliveryId)).deliveredAt, { what: 'the export to be recorded' });
    } finally {
      await pacs.close();
    }
  });

  it('fails the export as before once an outage outlasts its budget, and a retry by hand waits for S3 anew', async () => {
    const studyId = await finishedStudy();
    const pacs = await harness.startReceiver();
    await harness.s3.stop();
    let queued: { deliveryId: string; jobId: string };
    try {
      queued = await queueExport(studyId, pacs);
      await waitFor(async () => (await deliveryOf(queued.deliveryId)).failedAt, { what: 'the export to fail', timeoutMs: 10_000 });
      const failed = await jobOf(queued.jobId);
      expect([failed.attemptsMade, await harness.env.api.ctx.queues.webhooks.getJobState(queued.jobId)]).toEqual([SHORT_RETRIES.attempts, 'failed']);
      expect(failed.attemptsStarted).toBeGreaterThan(SHORT_RETRIES.attempts);
      expect(pacs.received).toEqual([]);

      // S3 is still down when the export is retried by hand: it waits for S3 instead of failing at once.
      const retried = Date.now();
      await failed.retry('failed');
      const state = await waitFor(
        async () => {
          const job = await jobOf(queued.jobId);
          const now = await harness.env.api.ctx.queues.webhooks.getJobState(queued.jobId);
          return job.attemptsStarted > failed.attemptsStarted && ['delayed', 'failed', 'completed'].includes(now) && now;
        },
        { what: 'the retried export to be tried' },
      );
      expect(state).toBe('delayed');
      expect(outageStartOf(await jobOf(queued.jobId))).toBeGreaterThanOrEqual(retried);
    } finally {
      await harness.s3.restart();
    }
    await pacs.waitFor(1, '/studies', 15_000);
    await waitFor(async () => (await deliveryOf(queued.deliveryId)).deliveredAt, { what: 'the export to be recorded' });
  });
});
