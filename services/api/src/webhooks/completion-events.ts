import { enqueueWebhook } from '@btd/shared';
import { batchView } from '../batches/batch-view.js';
import type { ApiContext } from '../context.js';
import type { DeliverySubject } from '../store/delivery-store.js';
import type { ImageRecord, StudyRecord } from '../store/records.js';
import { studyView } from '../studies/study-view.js';

/** Delivery ids follow from the subject, so a completion announced twice is delivered once. */
export function studyDeliveryId(studyId: string): string {
  return `study-${studyId}`;
}

export function batchDeliveryId(batchId: string): string {
  return `batch-${batchId}`;
}

/** Creates the delivery and queues it; nothing when its subject was erased meanwhile. */
async function announce(ctx: ApiContext, id: string, clientId: string, url: string, event: string, payload: object, subject: DeliverySubject) {
  const base = ctx.config.publicUrl ? { apiUrl: ctx.config.publicUrl } : {};
  const body = JSON.stringify({ event, deliveryId: id, ...base, ...payload });
  if (await ctx.deliveries.createOnce({ id, clientId, event, url, body }, subject)) await enqueueWebhook(ctx.queues.webhooks, id);
}

/** Queues the `study.completed` webhook of a finished study that asked for one. */
export async function announceStudyCompleted(ctx: ApiContext, study: StudyRecord, images: readonly ImageRecord[]): Promise<void> {
  if (!study.callbackUrl) return;
  const view = studyView(study, images, new Set(), undefined);
  await announce(ctx, studyDeliveryId(study.id), study.clientId, study.callbackUrl, 'study.completed', { study: view }, { studyId: study.id });
}

/** Queues the `batch.completed` webhook of a finished batch that asked for one. */
export async function announceBatchCompleted(ctx: ApiContext, batchId: string): Promise<void> {
  const batch = await ctx.batches.get(batchId);
  if (!batch?.callbackUrl || batch.state !== 'done') return;
  const view = batchView(batch, { studies: [] }, undefined);
  const { studies: _omitted, ...summary } = view;
  await announce(ctx, batchDeliveryId(batch.id), batch.clientId, batch.callbackUrl, 'batch.completed', { batch: summary }, { batchId: batch.id });
}
