import { Type, type Static } from '@sinclair/typebox';
import type { ConnectionOptions, DefaultJobOptions, Job, Queue } from 'bullmq';
import { KEEP_COMPLETED, KEEP_FAILED, createQueue, deterministicJobId, exponentialBackoff } from './queue-options.js';

/** Name of the queue of webhook deliveries. */
export const WEBHOOKS_QUEUE = 'webhooks';

/** Job name used for every delivery. */
export const WEBHOOK_JOB_NAME = 'deliver';

/**
 * Payload of a webhook delivery: only the delivery id. The URL, body and secret live in the
 * API's store, so nothing sensitive sits in Redis in plain text.
 */
export const WebhookJobSchema = Type.Object({ deliveryId: Type.String({ minLength: 1 }) }, { additionalProperties: false });

export type WebhookJob = Static<typeof WebhookJobSchema>;

/**
 * Receivers are often down for minutes: eight attempts, the waits between them doubling from 2 s to
 * 128 s and each cut by a random share of up to half (jitter), wait about 2 to 4 minutes in all
 * before the delivery is marked failed.
 */
export const WEBHOOK_JOB_OPTIONS: DefaultJobOptions = Object.freeze({
  attempts: 8,
  backoff: exponentialBackoff(2000),
  removeOnComplete: KEEP_COMPLETED,
  removeOnFail: KEEP_FAILED,
});

/** The job id of a delivery, so enqueuing it twice sends it once. */
export function webhookJobId(deliveryId: string): string {
  return deterministicJobId('webhook', deliveryId);
}

export type WebhooksQueue = Queue<WebhookJob>;
export type WebhookJobHandle = Job<WebhookJob>;

/** Creates the webhooks queue. */
export function createWebhooksQueue(connection: ConnectionOptions, prefix: string): WebhooksQueue {
  return createQueue<WebhookJob>(WEBHOOKS_QUEUE, connection, prefix, WEBHOOK_JOB_OPTIONS);
}

/** Enqueues a delivery; a second call for the same delivery id is a no-op. */
export async function enqueueWebhook(queue: WebhooksQueue, deliveryId: string): Promise<WebhookJobHandle> {
  return queue.add(WEBHOOK_JOB_NAME, { deliveryId }, { jobId: webhookJobId(deliveryId) });
}
