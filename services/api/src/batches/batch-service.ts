import { createHash } from 'node:crypto';
import stableStringify from 'safe-stable-stringify';
import type { ApiClient } from '../auth/api-keys.js';
import type { ApiContext } from '../context.js';
import { ApiError, batchNotOpen, notFound } from '../errors/api-error.js';
import type { FieldsCheck } from '../intake/read-study-form.js';
import { idempotencyInProgress } from '../store/idempotency-store.js';
import type { BatchRecord } from '../store/records.js';
import { ClaimLostError } from '../store/study-store.js';
import type { CreateBatch, BatchView } from '../schemas/batch.schemas.js';
import { newId } from '../studies/submit-study.js';
import { announceBatchCompleted, batchDeliveryId } from '../webhooks/completion-events.js';
import { batchPath, batchView, type StudyPage } from './batch-view.js';

/** The batch if it exists and belongs to the client; 404 otherwise. */
export async function ownedBatch(ctx: ApiContext, client: ApiClient, batchId: string): Promise<BatchRecord> {
  const batch = await ctx.batches.get(batchId);
  if (!batch || batch.clientId !== client.id) throw notFound('batch', batchId);
  return batch;
}

/**
 * Whether a study for a batch that takes no more may still be a retry of one it took before it
 * closed: its Idempotency-Key or its externalId names a submission, and only its files tell.
 */
async function mayBeRetry(ctx: ApiContext, clientId: string, idempotencyKey: string | undefined, externalId: string | undefined): Promise<boolean> {
  if (idempotencyKey !== undefined && (await ctx.idempotency.names(clientId, idempotencyKey))) return true;
  return externalId !== undefined && (await ctx.externalIds.lookup(clientId, externalId)) !== undefined;
}

/**
 * The check of a chunk's text fields before its files, for a batch that was not open when the request
 * came: 409 batch_not_open as soon as they tell that the chunk cannot be a retry of a study the batch
 * took, that is when its Idempotency-Key (if any) names no request and its externalId, sent before
 * the files or absent from the whole form, names no study. None for an open batch: the insert refuses
 * a study for one closed meanwhile, in one step with the close.
 */
export function closedBatchCheck(ctx: ApiContext, clientId: string, batch: BatchRecord, idempotencyKey: string | undefined): FieldsCheck | undefined {
  if (batch.state === 'open') return undefined;
  return async ({ externalId }, complete) => {
    // An externalId may still follow the first file.
    if (!complete && externalId === undefined) return;
    if (await mayBeRetry(ctx, clientId, idempotencyKey, externalId)) return;
    throw batchNotOpen(batch.state);
  };
}

/** Creates an open batch; with an Idempotency-Key a retry returns the same batch. */
export async function createBatch(ctx: ApiContext, client: ApiClient, input: CreateBatch, idempotencyKey: string | undefined) {
  // Keys sorted: the same batch sent with its fields in another order is the same request.
  const fingerprint = createHash('sha256').update(stableStringify(['batch', input]) ?? '').digest('hex');
  return ctx.idempotency.run(client.id, idempotencyKey, fingerprint, async (claim) => {
    const batch: BatchRecord = {
      id: newId('bat'),
      clientId: client.id,
      ...input,
      priority: input.priority ?? 'routine',
      state: 'open',
      createdAt: new Date().toISOString(),
      studyCount: 0,
      processingStudies: 0,
      doneStudies: 0,
      failedStudies: 0,
    };
    const response = { statusCode: 201, location: batchPath(batch.id), body: batchView(batch, { studies: [] }, undefined) };
    try {
      await ctx.batches.create(batch, claim && { claim, response });
    } catch (error) {
      if (error instanceof ClaimLostError) throw idempotencyInProgress();
      throw error;
    }
    return response;
  });
}

/** One page of the batch's studies (`after` = position of the last one seen). */
export async function readStudyPage(ctx: ApiContext, batch: BatchRecord, after: number, limit: number): Promise<StudyPage> {
  const page = await ctx.batches.studyPage(batch.id, after, limit);
  const studies = (await ctx.studies.getMany(page.ids)).filter((study) => study !== undefined);
  const more = page.ids.length === limit && page.last !== undefined;
  return { studies, ...(more ? { next: `limit=${limit}&after=${page.last}` } : {}) };
}

/** The batch with counts, its webhook's delivery and one page of studies (`after` = position of the last one seen). */
export async function readBatchView(ctx: ApiContext, batch: BatchRecord, after: number, limit: number): Promise<BatchView> {
  const page = await readStudyPage(ctx, batch, after, limit);
  const delivery = batch.callbackUrl ? await ctx.deliveries.get(batchDeliveryId(batch.id)) : undefined;
  return batchView(batch, page, delivery);
}

/** Closes the batch to new studies; when nothing is pending it completes (and announces) at once. */
export async function closeBatch(ctx: ApiContext, batch: BatchRecord): Promise<BatchRecord> {
  const state = await ctx.batches.close(batch.id);
  if (state === 'done') await announceBatchCompleted(ctx, batch.id);
  const closed = await ctx.batches.get(batch.id);
  if (!closed) throw new ApiError(404, 'not_found', `batch ${batch.id} not found`);
  return closed;
}
