import { UnrecoverableError, type Job, type Processor } from 'bullmq';
import type { Logger, S3Outage, WebhookJob } from '@btd/shared';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors/api-error.js';
import { PACS_EXPORT_EVENT, pacsExportRequest } from '../dicom-results/pacs-export.js';
import type { DeliveryRecord } from '../store/records.js';
import { REDIS_RESTART_PAUSES_MS, withPauses } from '../store/with-pauses.js';
import { checkCallbackUrl, type CallbackUrlPolicy } from './callback-url.js';
import { postOutbound } from './outbound-post.js';
import { SIGNATURE_HEADER, clientWebhookSecret, signWebhook } from './webhook-signature.js';

/** A webhook: the stored JSON body, signed afresh (new timestamp) with its client's secret. */
function signedRequest(ctx: ApiContext, delivery: DeliveryRecord): { body: string; headers: Record<string, string> } {
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = {
    [SIGNATURE_HEADER]: signWebhook(clientWebhookSecret(ctx.webhookSecret, delivery.clientId), delivery.body, timestamp),
    'x-btd-event': delivery.event,
    'x-btd-delivery': delivery.id,
  };
  return { body: delivery.body, headers };
}

/**
 * Refuses, for good, a webhook whose callbackUrl the settings in force refuse: one stored while
 * WEBHOOK_REQUIRE_HTTPS was off (or before it existed) is not sent in clear once it is on, nor one to an
 * address that WEBHOOK_ALLOWED_NETWORKS no longer (or, stored by an older version, never) allowed. No
 * attempt is made, so none is recorded; the job's failure marks the delivery failed with the reason.
 *
 * @throws UnrecoverableError naming the rule, when the URL is refused
 */
function refuseUnlessAllowed(delivery: DeliveryRecord, policy: CallbackUrlPolicy, log: Logger): void {
  try {
    checkCallbackUrl(delivery.url, policy);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const reason = `not sent, the settings in force refuse its callbackUrl: ${error.message}`;
    log.warn({ deliveryId: delivery.id, reason }, 'webhook not sent: callbackUrl refused');
    throw new UnrecoverableError(`webhook ${delivery.id}: ${reason}`);
  }
}

/** A delivery being sent: its job, the token of the job's lock and the job's logger. */
interface RunningDelivery {
  job: Job<WebhookJob>;
  token: string | undefined;
  log: Logger;
}

/**
 * A PACS export's request, built from S3. S3 being unreachable defers the job without spending an
 * attempt (see `S3Outage`), within the export's outage budget; once the request is built, the job's
 * outage, if it was in one, is over.
 */
async function exportRequest(ctx: ApiContext, delivery: DeliveryRecord, outage: S3Outage | undefined, { job, token, log }: RunningDelivery) {
  try {
    const request = await pacsExportRequest(ctx, delivery);
    await outage?.reachable(job);
    return request;
  } catch (error) {
    await outage?.deferIfUnavailable(job, token, error, log);
    throw error;
  }
}

/**
 * Delivers one webhook (or a PACS export, which goes the same way: see `pacs-export.ts`): POSTs the stored body, signed afresh (new timestamp) on every attempt,
 * and records the attempt on the delivery. A non-2xx answer throws, so BullMQ retries with
 * exponential backoff; a host that resolves only to addresses the settings refuse fails the delivery
 * at once, since no retry gets through while they stay. A delivery recorded as succeeded is not sent
 * again. An export that finds S3 unreachable while building its request waits for it through
 * `outage`, without spending attempts.
 * Delivery is at least once: one the receiver accepted is sent again only when it could not be
 * recorded (the process died in between, or Redis stayed away for longer than the recording waits).
 */
export function createWebhookProcessor(ctx: ApiContext, logger: Logger, outage?: S3Outage): Processor<WebhookJob> {
  return async (job: Job<WebhookJob>, token?: string) => {
    const log = logger.child({ jobId: job.id, queue: job.queueName, attempt: job.attemptsMade + 1 });
    const delivery = await ctx.deliveries.get(job.data.deliveryId);
    if (!delivery) throw new UnrecoverableError(`delivery ${job.data.deliveryId} does not exist`);
    if (delivery.deliveredAt) return;
    const pacsExport = delivery.event === PACS_EXPORT_EVENT;
    if (!pacsExport) refuseUnlessAllowed(delivery, ctx.callbackUrls, log);
    const request = pacsExport ? await exportRequest(ctx, delivery, outage, { job, token, log }) : signedRequest(ctx, delivery);
    const outcome = await postOutbound(
      delivery.url,
      request.body,
      request.headers,
      // A client's callbackUrl reaches only the networks the operator allows; the PACS is the operator's own.
      pacsExport ? { timeoutMs: ctx.config.pacsStowTimeoutMs } : { timeoutMs: ctx.config.webhookTimeoutMs, policy: ctx.callbackUrls.addresses },
    );
    // The receiver has answered: the attempt is recorded through a Redis restart of a few seconds,
    // since a delivery left unrecorded would be sent again by the job's retry.
    await withPauses(() => ctx.deliveries.recordAttempt(delivery.id, outcome.status, outcome.error), REDIS_RESTART_PAUSES_MS);
    ctx.metrics.webhookAttempts.inc({ outcome: outcome.error ? 'failed' : 'delivered' });
    if (outcome.error) {
      log.warn({ deliveryId: delivery.id, status: outcome.status, error: outcome.error }, 'webhook attempt failed');
      if (outcome.addressRefused) throw new UnrecoverableError(`webhook ${delivery.id}: not sent, the settings in force refuse its address: ${outcome.error}`);
      throw new Error(`webhook ${delivery.id}: ${outcome.error}`);
    }
    log.info({ deliveryId: delivery.id, status: outcome.status }, 'webhook delivered');
  };
}
