import type { FastifyBaseLogger } from 'fastify';
import { inferenceJobId, isStoreUnavailable, resultJobId, resultsPrefix, studyOriginalsPrefix, webhookJobId } from '@btd/shared';
import type { ApiContext } from '../context.js';
import { pacsExportId } from '../dicom-results/pacs-export.js';
import { ApiError } from '../errors/api-error.js';
import { DependencyUnavailableError } from '../errors/dependency-unavailable.error.js';
import { RetryLaterError } from '../errors/retry-later.error.js';
import type { StudyRecord } from '../store/records.js';
import { studyDeliveryId } from '../webhooks/completion-events.js';

/** How long a client is asked to wait before erasing again a study still being analysed. */
export const ERASE_IN_PROGRESS_RETRY_AFTER_SECONDS = 30;

/** What erasing logs to: a request's log, or the sweep's. */
type ErasureLog = Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>;

/** Why a study was erased: a client's DELETE, or the retention sweep; the label of `btd_studies_erased_total`. */
export type ErasureTrigger = 'request' | 'retention';

/** The answer to erasing a study still queued or processing: its results are still to come. */
export function studyInProgress(study: StudyRecord): ApiError {
  const seconds = ERASE_IN_PROGRESS_RETRY_AFTER_SECONDS;
  return new RetryLaterError(409, 'study_in_progress', `study ${study.id} is still ${study.state}; it can be erased once it is done or failed (retry after ${seconds} seconds)`, seconds);
}

/** The S3 prefixes of a study's objects: its originals, and each image's results (result.json, overlay). */
function objectPrefixes(study: StudyRecord): string[] {
  return [studyOriginalsPrefix(study.clientId, study.id), ...study.imageIds.map((imageId) => resultsPrefix(imageId))];
}

/**
 * Removes the finished jobs that name the study's images or deliveries (the results' jobs hold the
 * summaries), as far as BullMQ lets: a job still locked stays, and ages out as every finished job
 * does (a day once completed, a week once failed).
 */
async function removeFinishedJobs(ctx: ApiContext, study: StudyRecord, deliveryIds: readonly string[], log: ErasureLog): Promise<void> {
  const { inference, results, webhooks } = ctx.queues;
  const removals = [
    ...study.imageIds.flatMap((imageId) => [inference.remove(inferenceJobId(imageId)), results.remove(resultJobId(imageId))]),
    ...deliveryIds.map((deliveryId) => webhooks.remove(webhookJobId(deliveryId))),
  ];
  const failed = (await Promise.allSettled(removals)).filter((outcome) => outcome.status === 'rejected');
  if (failed.length > 0) log.warn({ studyId: study.id, err: failed[0]!.reason as unknown }, 'could not remove some finished jobs of an erased study; they age out with the others');
}

/**
 * Erases a finished study (done or failed): its objects in S3 first, then, in one Redis step, its
 * records and every index entry naming it (see `StudyStore.erase`). Should S3 fail or refuse a key,
 * nothing is removed from Redis and a {@link DependencyUnavailableError} (503) is thrown, so that
 * erasing again finishes the work: the records never go while objects stay. Last, the study's
 * finished jobs go too ({@link removeFinishedJobs}). A study still queued or processing is refused
 * ({@link studyInProgress}); one erased meanwhile returns false.
 */
export async function eraseStudy(ctx: ApiContext, study: StudyRecord, trigger: ErasureTrigger, log: ErasureLog): Promise<boolean> {
  if (study.state !== 'done' && study.state !== 'failed') throw studyInProgress(study);
  const where = { studyId: study.id, clientId: study.clientId, trigger };
  for (const prefix of objectPrefixes(study)) {
    try {
      await ctx.objectStore.deletePrefix(prefix);
    } catch (error) {
      const reason = isStoreUnavailable(error) ? 'S3 is unavailable' : 'S3 refused';
      log.error({ ...where, err: error, bucket: ctx.objectStore.bucket, prefix }, `could not erase a study's objects (${reason}); its records stay, to erase it again`);
      ctx.metrics.studiesErased.inc({ trigger, outcome: 'failed' });
      throw new DependencyUnavailableError('s3', error);
    }
  }
  const deliveryIds = [studyDeliveryId(study.id), pacsExportId(study.id)];
  const outcome = await ctx.studies.erase(study, deliveryIds);
  if (outcome === 'in_progress') throw studyInProgress(study);
  if (outcome === 'missing') return false;
  await removeFinishedJobs(ctx, study, deliveryIds, log);
  ctx.metrics.studiesErased.inc({ trigger, outcome: 'erased' });
  log.info({ ...where, images: study.imageIds.length, batchId: study.batchId }, 'study erased');
  return true;
}
