import { Worker } from 'bullmq';
import { RESULTS_QUEUE, S3Outage, S3_OUTAGE_DEFAULTS, WEBHOOKS_QUEUE, closeRedis, closeWorker, createWorkerConnection, once, type Logger } from '@btd/shared';
import type { ApiContext } from './context.js';
import { logConnectionHealth } from './redis-health-log.js';
import { createResultsProcessor } from './results/results.processor.js';
import { createWebhookProcessor } from './webhooks/webhook.processor.js';

/** The queue consumers living in the API process. */
export interface ApiWorkers {
  /**
   * Stops taking jobs, waits for those in flight (for at most half the shutdown limit, so that
   * the connections still close in time), closes the connection; safe to call twice.
   */
  close(): Promise<void>;
}

/**
 * Times a result or webhook job may be found stalled before BullMQ fails it (its default is once).
 * Such a job stalls only when the API process holding it died or stopped before it finished (a
 * webhook waits up to WEBHOOK_TIMEOUT_MS for its receiver, a PACS export two minutes), and running
 * it again is harmless, while failing it would drop the result or the delivery for good. Ten
 * restarts in a row with the same job still end one that kills its process every time.
 */
const API_CONSUMER_MAX_STALLED_COUNT = 10;

/**
 * Starts the results consumer (applies worker results to studies) and the webhook sender (which
 * also sends PACS exports). Results wait in Redis while no API runs, so none is lost across restarts.
 */
export function startApiWorkers(ctx: ApiContext, logger: Logger): ApiWorkers {
  const connection = createWorkerConnection(ctx.config.redisUrl);
  logConnectionHealth(connection, 'consumers', logger);
  // A job whose API process died is put back once its lock lapses and a stall check finds it.
  const consumer = {
    connection,
    prefix: ctx.config.queuePrefix,
    lockDuration: ctx.config.consumerLockDurationMs,
    stalledInterval: ctx.config.consumerStalledIntervalMs,
    maxStalledCount: API_CONSUMER_MAX_STALLED_COUNT,
  };
  const results = new Worker(RESULTS_QUEUE, createResultsProcessor(ctx, logger), { ...consumer, concurrency: ctx.config.resultsConcurrency });
  // PACS exports read S3; an outage defers them instead of spending their attempts.
  const exportOutage = new S3Outage(
    { budgetMs: ctx.config.pacsExportS3OutageBudgetMs, maxDelayMs: S3_OUTAGE_DEFAULTS.maxDelayMs },
    logger.child({ queue: WEBHOOKS_QUEUE }),
    { s3Unavailable: ctx.metrics.pacsExportS3Unavailable, s3Deferrals: ctx.metrics.pacsExportS3Deferrals },
    () => ctx.objectStore.ping(),
  );
  const webhooks = new Worker(WEBHOOKS_QUEUE, createWebhookProcessor(ctx, logger, exportOutage), { ...consumer, concurrency: ctx.config.webhookConcurrency });
  // Failed for good, whichever way: attempts spent, a refusal, or stalled too often (the API process
  // holding it died more than its stall count allows, which fails it without spending its attempts).
  // BullMQ sets finishedOn only then, not on a failure it retries.
  webhooks.on('failed', (job, error) => {
    if (job?.finishedOn === undefined) return;
    ctx.deliveries.markFailed(job.data.deliveryId, error.message).catch((err: unknown) => logger.error({ err, jobId: job.id }, 'could not mark delivery failed'));
  });
  // A discarded result's job names the erased study's ids: once completed (no longer locked) it goes.
  results.on('completed', (job, outcome) => {
    if (outcome !== 'discarded') return;
    job.remove().catch((err: unknown) => logger.warn({ err, jobId: job.id, queue: RESULTS_QUEUE }, 'could not remove the job of a discarded result; it ages out with the others'));
  });
  for (const worker of [results, webhooks]) {
    worker.on('error', (error) => logger.error({ err: error, queue: worker.name }, 'queue consumer error'));
  }
  return {
    close: once(async () => {
      const graceMs = ctx.config.shutdownTimeoutMs / 2;
      exportOutage.close();
      await Promise.allSettled([closeWorker(results, graceMs, logger), closeWorker(webhooks, graceMs, logger)]);
      await closeRedis(connection);
    }),
  };
}
