import { Value } from '@sinclair/typebox/value';
import { UnrecoverableError, type Job, type Processor } from 'bullmq';
import { ResultMessageSchema, assertNever, inferenceJobId, resultsPrefix, type Logger, type ResultMessage } from '@btd/shared';
import type { ApiContext } from '../context.js';
import type { StudyRecord } from '../store/records.js';
import type { AppliedResult } from '../store/study-store.js';
import { queuePacsExport } from '../dicom-results/pacs-export.js';
import { announceBatchCompleted, announceStudyCompleted } from '../webhooks/completion-events.js';

function observe(ctx: ApiContext, study: StudyRecord, message: ResultMessage): void {
  switch (message.kind) {
    case 'succeeded':
      ctx.metrics.results.inc({ label: message.summary.label });
      ctx.metrics.jobDuration.observe({ queue: 'inference' }, message.summary.timings.totalMs / 1000);
      break;
    case 'failed':
      ctx.metrics.results.inc({ label: 'failed' });
      break;
    default:
      assertNever(message, 'result kind');
  }
  const sinceSubmission = (Date.parse(message.finishedAt) - Date.parse(study.createdAt)) / 1000;
  if (sinceSubmission >= 0) ctx.metrics.submitToResult.observe(sinceSubmission);
}

/** Runs on every delivery of a finished study, not only the first: announcing is idempotent. */
async function announce(ctx: ApiContext, study: StudyRecord, outcome: AppliedResult): Promise<void> {
  const finished = outcome.finishedStudy;
  if (!finished) return;
  if (finished.callbackUrl || ctx.config.pacsStowUrl) {
    const images = await ctx.studies.images(finished);
    await Promise.all([announceStudyCompleted(ctx, finished, images), queuePacsExport(ctx, finished, images)]);
  }
  if (study.batchId && outcome.batchState === 'done') await announceBatchCompleted(ctx, study.batchId);
}

/** What became of a result: applied to its study, or discarded, its study erased. */
export type ResultOutcome = 'applied' | 'discarded';

/** Thrown while the inference job of a discarded result is still held by its worker: the result job is retried. */
export class InferenceJobStillHeldError extends Error {
  constructor(imageId: string) {
    super(`the inference job of image ${imageId}, whose study was erased, is still held by its worker`);
    this.name = 'InferenceJobStillHeldError';
  }
}

/**
 * Discards a result whose study (or image) is gone, erased while its image was analysed or by a
 * worker that stalled and still finished: deletes the objects the worker wrote, then its inference
 * job, once its worker lets go of it (until then the result job is retried; on its last attempt it
 * stops waiting, and the inference job ages out with the others). The result job itself is removed
 * once completed (see `startApiWorkers`). Creates no record and counts nothing.
 */
async function discard(ctx: ApiContext, job: Job<ResultMessage>, log: Logger): Promise<ResultOutcome> {
  const message = job.data;
  await ctx.objectStore.deletePrefix(resultsPrefix(message.imageId));
  const inference = ctx.queues.inference;
  const jobId = inferenceJobId(message.imageId);
  if ((await inference.remove(jobId)) === 0 && (await inference.getJobState(jobId)) === 'active') {
    if (job.attemptsMade + 1 < (job.opts.attempts ?? 1)) throw new InferenceJobStillHeldError(message.imageId);
    log.warn({ imageId: message.imageId, inferenceJobId: jobId }, 'result of an erased study discarded, its objects deleted; its inference job, still held by its worker, ages out with the others');
    return 'discarded';
  }
  log.info({ imageId: message.imageId, kind: message.kind }, 'result of an erased study discarded: its objects deleted');
  return 'discarded';
}

/**
 * Applies a worker's result to the study (and its batch), then announces completions. Safe to
 * run twice for the same message: the store applies a result once, and webhook deliveries are
 * keyed by subject. A result for a study that no longer exists is discarded ({@link discard}).
 */
export function createResultsProcessor(ctx: ApiContext, logger: Logger): Processor<ResultMessage, ResultOutcome> {
  return async (job: Job<ResultMessage>) => {
    const started = performance.now();
    const message = job.data;
    if (!Value.Check(ResultMessageSchema, message)) throw new UnrecoverableError('malformed result message');
    const modelVersion = message.kind === 'succeeded' ? message.summary.models.map((m) => `${m.task}@${m.version}`).join(',') : undefined;
    const log = logger.child({ jobId: job.id, queue: job.queueName, attempt: job.attemptsMade + 1, modelVersion, studyId: message.studyId });
    const study = await ctx.studies.get(message.studyId);
    if (!study) return discard(ctx, job, log);
    if (study.clientId !== message.clientId) throw new UnrecoverableError(`result for study ${message.studyId} names another client`);
    const outcome = await ctx.studies.applyResult(study, message);
    // Erased between the read and the update: the update found its image gone and changed nothing.
    if (outcome.studyState === 'missing') return discard(ctx, job, log);
    if (outcome.applied) observe(ctx, study, message);
    await announce(ctx, study, outcome);
    ctx.metrics.jobDuration.observe({ queue: job.queueName }, (performance.now() - started) / 1000);
    log.info({ imageId: message.imageId, kind: message.kind, applied: outcome.applied, studyState: outcome.studyState }, 'result applied');
    return 'applied';
  };
}
