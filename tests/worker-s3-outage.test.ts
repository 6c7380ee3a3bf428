import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { INFERENCE_JOB_NAME, inferenceJobId, originalKey, outageStartOf, overlayKey, resultJobId } from '@btd/shared';
import { createWorkerMetrics, type ModelProvider, type WorkerMetrics } from '@btd/inference-worker';
import { sleep, waitFor } from './helpers/index.js';
import { useWorkerSuite } from './worker-fixtures.js';

/** Two attempts 100 ms apart: the whole retry span an outage would have to outlast is a tenth of a second. */
const SHORT_RETRIES = { attempts: 2, backoff: { type: 'fixed', delay: 100 } } as const;
/** Waits between tries capped short, so that a job goes through soon after S3 is back. */
const QUICK_OUTAGE_RETRIES = { s3OutageMaxDelayMs: 200 } as const;

const suite = useWorkerSuite();

/** Stores an image (or not, with `null`) and enqueues its job with {@link SHORT_RETRIES}. */
async function submit(image: Uint8Array | null): Promise<{ imageId: string; jobId: string }> {
  const ids = { clientId: 'tester', studyId: `s-${randomUUID()}`, imageId: `i-${randomUUID()}` };
  const objectKey = originalKey(ids);
  if (image) await suite.env.store.put(objectKey, image, 'image/jpeg');
  const job = await suite.env.inference.add(INFERENCE_JOB_NAME, { ...ids, objectKey }, { jobId: inferenceJobId(ids.imageId), ...SHORT_RETRIES });
  return { imageId: ids.imageId, jobId: job.id as string };
}

async function jobOf(jobId: string) {
  const job = await suite.env.inference.getJob(jobId);
  if (!job) throw new Error(`job ${jobId} is gone`);
  return job;
}

async function metricValue(metrics: WorkerMetrics, name: string): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  return metric?.values[0]?.value;
}

describe('inference worker during an S3 outage', () => {
  it('waits out an outage far longer than its retry span without spending an attempt, then completes', async () => {
    const { env, s3, models, tumourImage } = suite;
    const { imageId, jobId } = await submit(tumourImage);
    const metrics = createWorkerMetrics();
    await s3.stop();
    const outageStarted = Date.now();
    try {
      env.startWorker(models, QUICK_OUTAGE_RETRIES, metrics);
      // Taken, found S3 down and put back, several times over (or, wrongly, failed for good).
      await waitFor(
        async () => {
          const job = await jobOf(jobId);
          return job.attemptsStarted >= 3 || job.finishedOn !== undefined;
        },
        { what: 'the job to be tried three times' },
      );
      await sleep(Math.max(0, outageStarted + 2000 - Date.now()));
      const waiting = await jobOf(jobId);
      expect(waiting.attemptsMade).toBe(0);
      expect(waiting.failedReason).toBeUndefined();
      expect(await env.results.getJob(resultJobId(imageId))).toBeUndefined();
      expect(outageStartOf(waiting)).toBeGreaterThanOrEqual(outageStarted);
      expect(await metricValue(metrics, 'btd_worker_s3_unavailable')).toBe(1);
      expect(await metricValue(metrics, 'btd_worker_s3_deferrals_total')).toBeGreaterThanOrEqual(2);
    } finally {
      await s3.restart();
    }
    const message = await env.resultOf(imageId, 15_000);
    expect(message.kind).toBe('succeeded');
    await waitFor(async () => (await env.inference.getJobState(jobId)) === 'completed', { what: 'the job to be recorded as completed' });
    const done = await jobOf(jobId);
    expect(done.attemptsMade).toBe(1);
    expect(done.stacktrace ?? []).toEqual([]);
    expect(await metricValue(metrics, 'btd_worker_s3_unavailable')).toBe(0);
  });

  it('reports S3 back once it answers again, though no deferred job comes back to get through', async () => {
    const { env, s3, models, tumourImage } = suite;
    const { jobId } = await submit(tumourImage);
    const metrics = createWorkerMetrics();
    await s3.stop();
    try {
      env.startWorker(models, QUICK_OUTAGE_RETRIES, metrics);
      await waitFor(async () => outageStartOf(await jobOf(jobId)) !== undefined, { what: 'the job to be deferred' });
      // Its delay ends in a paused queue: no job reaches this worker any more.
      await env.inference.pause();
      expect(await metricValue(metrics, 'btd_worker_s3_unavailable')).toBe(1);
      await sleep(1000);
      expect(await metricValue(metrics, 'btd_worker_s3_unavailable')).toBe(1);
    } finally {
      await s3.restart();
    }
    await waitFor(async () => (await metricValue(metrics, 'btd_worker_s3_unavailable')) === 0, { what: 'the gauge to return to 0', timeoutMs: 5000 });
    expect((await jobOf(jobId)).attemptsMade).toBe(0);
    expect(await env.inference.getJobState(jobId)).not.toBe('completed');
  });

  it('waits the same way when S3 goes down between reading the original and writing the results', async () => {
    const { env, s3, models, tumourImage } = suite;
    const { imageId, jobId } = await submit(tumourImage);
    let outage: Promise<void> | undefined;
    // S3 stops while the first forward pass runs: the original was read, the overlay and document cannot be written.
    const stopping: ModelProvider = {
      acquire: (task) => {
        const lease = models.acquire(task);
        const predict: typeof lease.model.predict = async (image, options) => {
          outage ??= s3.stop();
          await outage;
          return lease.model.predict(image, options);
        };
        return { model: { ...lease.model, predict }, release: () => lease.release() };
      },
    };
    try {
      env.startWorker(stopping, QUICK_OUTAGE_RETRIES);
      await waitFor(
        async () => {
          const job = await jobOf(jobId);
          return outageStartOf(job) !== undefined || job.finishedOn !== undefined;
        },
        { what: 'the job to be deferred' },
      );
      await sleep(1000);
      const waiting = await jobOf(jobId);
      expect([waiting.attemptsMade, await env.results.getJob(resultJobId(imageId))]).toEqual([0, undefined]);
    } finally {
      await outage;
      await s3.restart();
    }
    expect((await env.resultOf(imageId, 15_000)).kind).toBe('succeeded');
    expect(await env.store.exists(overlayKey(imageId))).toBe(true);
  });

  it('fails the job as before once the outage outlasts its budget', async () => {
    const { env, s3, models, tumourImage } = suite;
    const { imageId, jobId } = await submit(tumourImage);
    await s3.stop();
    try {
      env.startWorker(models, { ...QUICK_OUTAGE_RETRIES, s3OutageBudgetMs: 500 });
      const message = await env.resultOf(imageId, 15_000);
      expect(message.kind === 'failed' && message.reason).toMatch(/ECONNREFUSED/);
      await waitFor(async () => (await env.inference.getJobState(jobId)) === 'failed', { what: 'the job to be recorded as failed' });
      const failed = await jobOf(jobId);
      expect(failed.attemptsMade).toBe(SHORT_RETRIES.attempts);
      expect(failed.attemptsStarted).toBeGreaterThan(SHORT_RETRIES.attempts);
    } finally {
      await s3.restart();
    }
  });

  it('gives a later outage a whole budget once the job got through to S3 in between', async () => {
    const { env, s3, models, tumourImage } = suite;
    const budgetMs = 1500;
    const { imageId, jobId } = await submit(tumourImage);
    let firstOutage: number | undefined;
    let secondOutage: Promise<void> | undefined;
    // Back from the first outage, the job reads its original; its forward pass then fails once (a
    // passing fault, not S3) when the first outage began longer ago than the budget, and S3 goes
    // down again before the retry.
    const failingOnce: ModelProvider = {
      acquire: (task) => {
        const lease = models.acquire(task);
        const predict: typeof lease.model.predict = async (image, options) => {
          if (secondOutage === undefined) {
            secondOutage = sleep(Math.max(0, (firstOutage ?? 0) + budgetMs + 200 - Date.now())).then(() => s3.stop());
            await secondOutage;
            throw new Error('model thread crashed');
          }
          return lease.model.predict(image, options);
        };
        return { model: { ...lease.model, predict }, release: () => lease.release() };
      },
    };
    await s3.stop();
    try {
      env.startWorker(failingOnce, { ...QUICK_OUTAGE_RETRIES, s3OutageBudgetMs: budgetMs });
      const deferred = await waitFor(
        async () => {
          const job = await jobOf(jobId);
          return (outageStartOf(job) !== undefined || job.finishedOn !== undefined) && job;
        },
        { what: 'the job to be deferred' },
      );
      firstOutage = outageStartOf(deferred) ?? expect.unreachable('the job failed instead of waiting for S3');
    } finally {
      await s3.restart();
    }
    await waitFor(() => secondOutage !== undefined, { what: 'the forward pass', timeoutMs: 10_000 });
    try {
      await secondOutage;
      const waiting = await waitFor(
        async () => {
          const job = await jobOf(jobId);
          return ((outageStartOf(job) ?? 0) > (firstOutage ?? 0) || job.finishedOn !== undefined) && job;
        },
        { what: 'the retry to find S3 down' },
      );
      expect(Date.now() - (firstOutage ?? 0)).toBeGreaterThan(budgetMs);
      const posted = await env.results.getJob(resultJobId(imageId));
      expect([waiting.attemptsMade, waiting.finishedOn, posted?.data]).toEqual([1, undefined, undefined]);
    } finally {
      await s3.restart();
    }
    expect((await env.resultOf(imageId, 15_000)).kind).toBe('succeeded');
  });

  it('still fails a job whose original is missing or undecodable at once, without waiting', async () => {
    const { env, models } = suite;
    const missing = await submit(null);
    const undecodable = await submit(new TextEncoder().encode('not an image'));
    env.startWorker(models, QUICK_OUTAGE_RETRIES);
    const reasons = [await env.resultOf(missing.imageId), await env.resultOf(undecodable.imageId)].map((message) => message.kind === 'failed' && message.reason);
    expect(reasons).toEqual([expect.stringMatching(/missing from storage/), expect.stringMatching(/not a decodable image/)]);
    for (const { jobId } of [missing, undecodable]) {
      await waitFor(async () => (await env.inference.getJobState(jobId)) === 'failed', { what: 'the job to be recorded as failed' });
      const job = await jobOf(jobId);
      expect([job.attemptsStarted, job.attemptsMade]).toEqual([1, 1]);
      expect(outageStartOf(job)).toBeUndefined();
    }
  });
});
