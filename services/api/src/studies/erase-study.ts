import type { FastifyBaseLogger } from 'fastify';
import { inferenceJobId, isStoreUnavailable, resultJobId, resultsPrefix, studyOriginalsPrefix, webhookJobId } from '@btd/shared';
import type { ApiContext } from '../context.js';
import { pacsExportId } from '../dicom-results/pacs-export.js';
import { DependencyUnavailableError } from '../errors/dependency-unavailable.error.js';
import type { StudyRecord } from '../store/records.js';
import { announceBatchCompleted, studyDeliveryId } from '../webhooks/completion-events.js';
import { REDIS_RESTART_PAUSES_MS, withPauses } from '../store/with-pauses.js';
import { recordLeftResults } from './left-originals.js';

/** What erasing logs to: a request's log, or the sweep's. */
type ErasureLog = Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>;

/** Why a study was erased: a client's DELETE, or the retention sweep; the label of `btd_studies_erased_total`. */
export type ErasureTrigger = 'request' | 'retention';

/** The retention sweep met a study not yet finished, which it leaves to its analysis. */
function notFinished(study: StudyRecord): Error {
  return new Error(`study ${study.id} is still ${study.state}; the retention sweep erases finished studies only`);
}

/** The S3 prefixes of a study's objects: its originals, and each image's results (result.json, overlay). */
function objectPrefixes(study: StudyRecord): string[] {
  return [studyOriginalsPrefix(study.clientId, study.id), ...study.imageIds.map((imageId) => resultsPrefix(imageId))];
}

/**
 * Removes the jobs that name the study's images or deliveries: the inference jobs still waiting or
 * delayed (no worker runs them then), and the finished ones (the results' jobs hold the summaries),
 * as far as BullMQ lets: a job a worker holds stays. A held inference job's late result is discarded
 * by the results consumer, which removes that job too; another held job ages out as every finished
 * job does (a day once completed, a week once failed).
 */
async function removeJobs(ctx: ApiContext, study: StudyRecord, deliveryIds: readonly string[], log: ErasureLog): Promise<void> {
  const { inference, results, webhooks } = ctx.queues;
  const removals = [
    ...study.imageIds.flatMap((imageId) => [inference.remove(inferenceJobId(imageId)), results.remove(resultJobId(imageId))]),
    ...deliveryIds.map((deliveryId) => webhooks.remove(webhookJobId(deliveryId))),
  ];
  const failed = (await Promise.allSettled(removals)).filter((outcome) => outcome.status === 'rejected');
  if (failed.length > 0) log.warn({ studyId: study.id, err: failed[0]!.reason as unknown }, 'could not remove some jobs of an erased study; they age out with the others');
}

/**
 * Deletes again the result objects of a study erased before it finished: a worker may have written
 * them after the first deletion, and had its result applied before the records went (one applied
 * after finds no study, and its objects are deleted by the results consumer). Its result job, if
 * still waiting, was removed with the others, so nothing else would delete them.
 */
async function deleteResultsWrittenMeanwhile(ctx: ApiContext, study: StudyRecord, log: ErasureLog): Promise<void> {
  const left: string[] = [];
  let failure: unknown;
  for (const imageId of study.imageIds) {
    await ctx.objectStore.deletePrefix(resultsPrefix(imageId)).catch((error: unknown) => {
      left.push(imageId);
      failure = error;
    });
  }
  if (left.length === 0) return;
  const where = { studyId: study.id, err: failure, bucket: ctx.objectStore.bucket, prefixes: left.map((imageId) => resultsPrefix(imageId)) };
  if (await recordLeftResults(ctx, study, left)) {
    log.warn(where, 'could not delete again the results of a study erased while analysed; the sweep deletes them once S3 answers');
  } else {
    log.error(where, "could not delete again the results of a study erased while analysed, nor record them for the sweep; its records are gone, its results' objects stay under the prefixes until removed by hand");
  }
}

/**
 * Announces a batch that an erasure completed, waiting out a Redis restart of a few seconds: the
 * study is gone by now, so an error would send the client to erase it again, which finds nothing
 * and would never announce the batch. Announcing is idempotent, so the retries send one webhook.
 */
async function announceErasureCompleted(ctx: ApiContext, batchId: string, log: ErasureLog): Promise<void> {
  await withPauses(() => announceBatchCompleted(ctx, batchId), REDIS_RESTART_PAUSES_MS).catch((error: unknown) => {
    log.error({ err: error, batchId }, 'could not announce the batch an erasure completed; its batch.completed webhook is not sent');
  });
}

/**
 * Erases a study, finished or not: its objects in S3 first, then, in one Redis step, its records and
 * every index entry naming it (see `StudyStore.erase`). Should S3 fail or refuse a key, nothing is
 * removed from Redis and a {@link DependencyUnavailableError} (503) is thrown, so that erasing again
 * finishes the work: the records never go while objects stay. Then its jobs go ({@link removeJobs}).
 * A study still queued or processing loses its waiting jobs; a worker holding one of its images
 * finishes it, and its result is discarded by the results consumer. Such a study leaves its batch's
 * count, and a batch thereby completed is announced. The retention sweep erases finished studies
 * only, and throws on any other. Returns false when the study was erased meanwhile.
 */
export async function eraseStudy(ctx: ApiContext, study: StudyRecord, trigger: ErasureTrigger, log: ErasureLog): Promise<boolean> {
  const finishedOnly = trigger === 'retention';
  const unfinished = study.state !== 'done' && study.state !== 'failed';
  if (finishedOnly && unfinished) throw notFinished(study);
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
  const erased = await ctx.studies.erase(study, deliveryIds, finishedOnly);
  if (erased.outcome === 'in_progress') throw notFinished(study);
  if (erased.outcome === 'missing') return false;
  await removeJobs(ctx, study, deliveryIds, log);
  // Read before the objects went: a study whose last result came meanwhile was erased finished.
  if (unfinished) await deleteResultsWrittenMeanwhile(ctx, study, log);
  if (study.batchId && erased.batchState === 'done') await announceErasureCompleted(ctx, study.batchId, log);
  ctx.metrics.studiesErased.inc({ trigger, outcome: 'erased' });
  log.info({ ...where, images: study.imageIds.length, batchId: study.batchId, unfinished }, 'study erased');
  return true;
}
