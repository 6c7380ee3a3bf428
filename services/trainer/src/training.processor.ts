import { setMaxListeners } from 'node:events';
import path from 'node:path';
import { CheckpointUnusableError, checkTrainOptions, InvalidOptionsError, trainModel } from '@btd/model';
import {
  PromotionConflictError,
  TRAINING_QUEUE,
  TrainingJobSchema,
  isStoreUnavailable,
  outageOf,
  type Logger,
  type ModelRegistry,
  type ObjectStore,
  type S3Outage,
  type TrainingJob,
  type TrainingJobHandle,
  type TrainingPhase,
  type TrainingResult,
  type DatasetWait,
  type TrainingCancellation,
  type VersionStatus,
} from '@btd/shared';
import { Value } from '@sinclair/typebox/value';
import { DelayedError, UnrecoverableError } from 'bullmq';
import { evaluateCandidate, type GateEvidence } from './candidate-evaluation.js';
import type { TrainerConfig } from './config.js';
import { confinementOf } from './dataset-confinement.js';
import { DatasetFolderUnreadableError, InvalidDatasetError, createDatasetResolver, resolveTrainingDataset, type DatasetResolver } from './dataset-source.js';
import { describeDataset } from './dataset-spec.js';
import { datasetWaitOf, handBackUnreadable, type DatasetReaders } from './dataset-wait.js';
import { findEarlierPublication } from './earlier-publication.js';
import { configuredEvaluationSet, resolveConfiguredEvaluationSet } from './evaluation-sets.js';
import { annotateManifest } from './manifest-annotation.js';
import { testSplitMetrics } from './test-split-metrics.js';
import { CancellationWatch } from './training-cancellation.js';
import { createProgressReporter, type ProgressReporter } from './training-progress.js';
import { TrainingWorkspace } from './training-workspace.js';

/** What the training processor needs. */
export interface TrainingProcessorDeps {
  registry: ModelRegistry;
  store: ObjectStore;
  logger: Logger;
  config: Pick<TrainerConfig, 'workDir' | 'datasetRoots' | 'evalSetTumorBinary' | 'evalSetTumorType' | 'evalMaxImages' | 'gateTolerance' | 'lockDurationMs'>;
  /** Aborted when the trainer shuts down: a running training stops and its job goes back to the queue. */
  shutdownSignal: AbortSignal;
  /** Defers trainings that find S3 unreachable without spending their attempts; without it, an outage fails attempts like any error. */
  outage?: S3Outage;
  /** The other trainers' published roots: a local folder this one cannot read goes back to the queue for one that can. Without it, the training fails at once. */
  readers?: DatasetReaders;
  /** The cancellation of a training, if one was asked for (`DELETE /v1/trainings/:id`); without it, trainings are never cancelled. */
  cancellation?: (jobId: string) => Promise<TrainingCancellation | undefined>;
}

interface JobContext {
  job: TrainingJobHandle;
  jobId: string;
  token: string | undefined;
  data: TrainingJob;
  log: Logger;
  progress: ProgressReporter;
  /** The wait for a trainer that can read the dataset folder, as the job's progress held it when taken. */
  datasetWait: DatasetWait | undefined;
  /** Aborted, and throws from `check()`, once the training is cancelled. */
  cancel: CancellationWatch;
  /** Aborted when the trainer shuts down or the training is cancelled: a dataset mirror or the gate under way stops at its next file or batch. */
  signal: AbortSignal;
}

/** Hands the job back to the queue without spending an attempt; the next run resumes from the checkpoint. */
async function handBack(ctx: JobContext): Promise<never> {
  if (!ctx.token) throw new Error('training interrupted by shutdown');
  ctx.log.info('training interrupted by shutdown; job handed back to the queue');
  await ctx.job.moveToDelayed(Date.now() + 1000, ctx.token);
  throw new DelayedError();
}

/**
 * Thrown when another trainer took the job while this one worked on it (this one's lock lapsed, the
 * stall check put the job back, and the other took it): this one publishes and promotes nothing.
 */
export class TrainingLockLostError extends Error {
  constructor(jobId: string) {
    super(`training ${jobId} was taken over by another trainer, this one's lock on it having lapsed; it publishes nothing`);
    this.name = 'TrainingLockLostError';
  }
}

/** Makes sure this trainer still holds the job's lock (extending it), else throws {@link TrainingLockLostError}. */
async function assertStillHeld(ctx: JobContext, lockDurationMs: number): Promise<void> {
  if (ctx.token === undefined) return;
  if ((await ctx.job.extendLock(ctx.token, lockDurationMs)) !== 1) throw new TrainingLockLostError(ctx.jobId);
}

/** A training stopped by a signal: cancelled, it fails for good; else the trainer shuts down and hands it back. */
async function interrupted(ctx: JobContext): Promise<never> {
  ctx.cancel.check();
  return handBack(ctx);
}

/** A training's phases in order: an S3 outage is over once the job gets through the phase that met it. */
const PHASES: readonly TrainingPhase[] = ['preparing', 'training', 'evaluating', 'publishing', 'done'];

/** Whether the job's progress holds a phase: a trainer reported on it, in this try or an earlier one. */
const hasReported = (job: TrainingJobHandle): boolean => typeof job.progress === 'object' && job.progress !== null && 'phase' in job.progress;

/** Whether a job that threw `error` fails for good: no attempt is left, or it may not be retried (a hand-back is no failure). */
function isLastAttempt(job: TrainingJobHandle, error: unknown): boolean {
  if (error instanceof DelayedError) return false;
  return error instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts?.attempts ?? 1);
}

/**
 * Processes one training job: mirror or check the dataset, train with per-epoch checkpoints
 * (resuming an earlier attempt's), run the promotion gate, publish the candidate and promote it
 * when it passes. A job that already recorded its outcome returns it without training again.
 */
export function createTrainingProcessor(deps: TrainingProcessorDeps) {
  const resolver = createDatasetResolver(deps.store, deps.config, deps.shutdownSignal);
  const cacheDir = path.resolve(deps.config.workDir, 'cache');
  /** The resolver of one training: its mirrors stop when it is cancelled, as at a shutdown. */
  const resolverOf = (ctx: JobContext): DatasetResolver => ({ ...resolver, signal: ctx.signal });

  async function train(ctx: JobContext, dataDir: string, workspace: TrainingWorkspace): Promise<void> {
    const resume = await workspace.hasCheckpoint();
    if (!resume) await workspace.resetCheckpoint();
    await workspace.resetOutput();
    ctx.cancel.check();
    if (deps.shutdownSignal.aborted) await handBack(ctx);
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    deps.shutdownSignal.addEventListener('abort', stop, { once: true });
    ctx.cancel.signal.addEventListener('abort', stop, { once: true });
    let firstEpoch = true;
    try {
      await trainModel({
        ...ctx.data.hyperParameters,
        task: ctx.data.task,
        dataDir,
        // A local folder's class folders and images are read only within the roots; a mirror holds no links.
        ...(ctx.data.dataset.kind === 'local' ? { confinement: confinementOf(resolver.allowedRoots) } : {}),
        outDir: workspace.outDir,
        cacheDir,
        checkpointDir: workspace.checkpointDir,
        ...(resume ? { resumeFrom: workspace.checkpointDir } : {}),
        signal: controller.signal,
        onEpoch: (epoch) => {
          const resumed = resume && firstEpoch ? { resumedFromEpoch: epoch.epoch - 1 } : {};
          firstEpoch = false;
          ctx.progress({ phase: 'training', ...epoch, ...resumed });
        },
      });
    } catch (error) {
      if (controller.signal.aborted) await interrupted(ctx);
      // A checkpoint that cannot be resumed would fail every retry alike: it is dropped, and the retry
      // starts over. A run that failed after it resumed keeps it, like one that did not resume: the
      // retry resumes from its last epoch.
      if (error instanceof CheckpointUnusableError) await workspace.resetCheckpoint();
      throw error;
    } finally {
      deps.shutdownSignal.removeEventListener('abort', stop);
      ctx.cancel.signal.removeEventListener('abort', stop);
    }
    // Stopped early by a signal: the output is half-trained and must not be published.
    if (controller.signal.aborted) await interrupted(ctx);
  }

  async function gate(ctx: JobContext, outDir: string): Promise<GateEvidence> {
    // An unusable set is the trainer's setting at fault, not the request: the error names the setting and the job is retried from its checkpoint.
    const evaluationDir = await resolveConfiguredEvaluationSet(deps.config, ctx.data.task, resolverOf(ctx));
    return evaluateCandidate(ctx.data.task, outDir, {
      registry: deps.registry,
      logger: ctx.log,
      evaluationDir,
      evaluationSet: configuredEvaluationSet(deps.config, ctx.data.task)?.value ?? null,
      maxImages: deps.config.evalMaxImages,
      tolerance: deps.config.gateTolerance,
      cacheDir,
      signal: ctx.signal,
    });
  }

  /**
   * Settles a published candidate: keeps it back or promotes it, as the gate decided. `earlier` is
   * the status an earlier attempt of the job recorded for it: a version that attempt already
   * promoted (or that was refused since) is not promoted again.
   */
  async function settle(ctx: JobContext, published: { version: string; contentHash: string }, evidence: GateEvidence, earlier?: VersionStatus): Promise<TrainingResult> {
    const { task, requestedBy } = ctx.data;
    // The version's own test split as well as the gate's set, which may not be configured.
    const testSplit = testSplitMetrics(await deps.registry.readManifest(task, published.version));
    const base = { task, version: published.version, contentHash: published.contentHash, metrics: evidence.candidate ? { ...evidence.candidate } : null, testSplitMetrics: testSplit ? { ...testSplit } : null };
    const refused = (reasons: string[]) => deps.registry.setStatus(task, published.version, { state: 'candidate', reasons }).then(() => ({ ...base, promoted: false, reasons }));
    if (!evidence.decision.promote) return { ...base, promoted: false, reasons: evidence.decision.reasons };
    if (ctx.data.autoPromote === false) return refused(['passed the gate; automatic promotion was not requested']);
    if (earlier) {
      const current = await deps.registry.promoted(task);
      if (current?.version === published.version || earlier.state === 'promoted' || earlier.state === 'retired') return { ...base, promoted: true, reasons: [] };
      if (earlier.state === 'refused') return { ...base, promoted: false, reasons: earlier.reasons };
    }
    try {
      const reason = `passed the promotion gate on ${evidence.evaluationSet ?? 'no evaluation set'}`;
      await deps.registry.promote(task, published.version, { by: `trainer for ${requestedBy}`, reason, expectedCurrent: evidence.comparedWith });
    } catch (error) {
      if (!(error instanceof PromotionConflictError)) throw error;
      return refused([`the promoted model changed to ${error.actual ?? 'none'} during the evaluation; review and promote manually`]);
    }
    ctx.log.info({ modelVersion: published.version }, 'candidate promoted');
    return { ...base, promoted: true, reasons: [] };
  }

  /** Records the job's outcome, which a redelivered job returns; the last step of publishing. */
  async function record(ctx: JobContext, result: TrainingResult): Promise<TrainingResult> {
    await deps.registry.recordTraining(ctx.data.task, ctx.jobId, result);
    return result;
  }

  async function publish(ctx: JobContext, outDir: string, evidence: GateEvidence): Promise<TrainingResult> {
    const { task, requestedBy, dataset, hyperParameters } = ctx.data;
    await annotateManifest(outDir, evidence);
    const source = { kind: 'training', jobId: ctx.jobId, requestedBy, dataset: describeDataset(dataset), hyperParameters: hyperParameters ?? {} };
    const published = await deps.registry.publishDirectory(task, outDir, { source, gate: evidence, reasons: evidence.decision.reasons });
    return record(ctx, await settle(ctx, published, evidence));
  }

  /** The publishing phase: only while this trainer still holds the job, so that two trainers never both publish one training. */
  function publishing<T>(ctx: JobContext, work: () => Promise<T>, begun = false): Promise<T> {
    return phase(
      ctx,
      'publishing',
      async () => {
        await assertStillHeld(ctx, deps.config.lockDurationMs);
        return work();
      },
      begun,
    );
  }

  /**
   * The job got through `name`: an S3 outage it met in that phase or an earlier one is over (one it
   * met in a later phase is not, so that a try that fails there again does not start a new budget).
   */
  async function gotThrough(ctx: JobContext, name: TrainingPhase): Promise<void> {
    const during = outageOf(ctx.job)?.s3UnavailableDuring as TrainingPhase | undefined;
    if (during !== undefined && PHASES.indexOf(name) < PHASES.indexOf(during)) return;
    // The outage is cleared from the progress as the reporter last wrote it.
    await ctx.progress.flush();
    await deps.outage?.reachable(ctx.job);
  }

  /**
   * Runs one phase. A shutdown before it, or one that makes it fail, hands the job back to the queue
   * without spending an attempt; a cancellation before it, or one that makes it fail, fails the job
   * for good (the mirror and the gate stop at their next file or batch when either comes; publishing,
   * a few writes, is finished once begun).
   */
  async function phase<T>(ctx: JobContext, name: 'preparing' | 'evaluating' | 'publishing', work: () => Promise<T>, begun = false): Promise<T> {
    // A cancellation stops the training before any phase, publishing too; once publishing has begun
    // (`begun`: an earlier try published the version), it is finished.
    if (!begun) ctx.cancel.check();
    if (deps.shutdownSignal.aborted) await handBack(ctx);
    ctx.progress({ phase: name });
    let done: T;
    try {
      done = await work();
    } catch (error) {
      if (ctx.signal.aborted && !(error instanceof DelayedError)) await interrupted(ctx);
      throw error;
    }
    await gotThrough(ctx, name);
    return done;
  }

  /**
   * A try that found S3 unreachable goes back to the queue without spending an attempt, as on
   * shutdown, keeping its checkpoint (see `S3Outage`); one that ends in another error forgets its outage.
   */
  async function deferIfUnavailable(ctx: JobContext, error: unknown): Promise<void> {
    if (error instanceof DelayedError) return;
    // The deferral keeps the progress reported so far and adds the outage to it; a job that has
    // reported nothing yet reports its phase, so that its progress is one the API can show.
    if (isStoreUnavailable(error) && !hasReported(ctx.job)) ctx.progress({});
    await ctx.progress.flush();
    await deps.outage?.deferIfUnavailable(ctx.job, ctx.token, error, ctx.log, ctx.progress.phase());
  }

  /** A local folder this trainer cannot read may be readable by another: the job goes back to the queue for it, for a while. */
  async function waitForReader(ctx: JobContext, error: unknown): Promise<never> {
    const { readers } = deps;
    if (!readers || !(error instanceof DatasetFolderUnreadableError) || ctx.data.dataset.kind !== 'local') throw error;
    const { job, token, progress, log } = ctx;
    return handBackUnreadable(readers, { job, token, folder: ctx.data.dataset.path, error, earlier: ctx.datasetWait, progress, log });
  }

  /** Trains, runs the gate and publishes; a job whose earlier attempt already published finishes that version instead. */
  async function produce(ctx: JobContext, workspace: TrainingWorkspace): Promise<TrainingResult> {
    const earlier = await findEarlierPublication(deps.registry, ctx.data.task, ctx.jobId, ctx.job.timestamp);
    if (earlier) {
      ctx.log.info({ modelVersion: earlier.version }, 'an earlier attempt published this training; finishing that version');
      return publishing(ctx, async () => record(ctx, await settle(ctx, earlier, earlier.status.gate as GateEvidence, earlier.status)), true);
    }
    // Hyper-parameters that trainModel would refuse fail the job before its dataset is mirrored.
    checkTrainOptions(ctx.data.hyperParameters ?? {});
    const dataDir = await phase(ctx, 'preparing', () => resolveTrainingDataset(ctx.data.dataset, resolverOf(ctx)).catch((error: unknown) => waitForReader(ctx, error)));
    // Read at last: the wait is over (its progress kept it so far, for a try that ends otherwise to pass it on).
    if (ctx.datasetWait) ctx.progress({ datasetWait: undefined });
    await train(ctx, dataDir, workspace);
    const evidence = await phase(ctx, 'evaluating', () => gate(ctx, workspace.outDir));
    return publishing(ctx, () => publish(ctx, workspace.outDir, evidence));
  }

  /** A job that failed for good is never resumed: its checkpoint and output go. */
  async function removeWorkspace(ctx: JobContext): Promise<void> {
    await new TrainingWorkspace(deps.config.workDir, ctx.jobId)
      .remove()
      .catch((error: unknown) => ctx.log.warn({ err: error }, 'could not remove the workspace of a failed training'));
  }

  async function run(ctx: JobContext): Promise<TrainingResult> {
    const previous = await deps.registry.readTraining<TrainingResult>(ctx.data.task, ctx.jobId);
    if (previous) {
      await gotThrough(ctx, 'done');
      return previous;
    }
    const workspace = new TrainingWorkspace(deps.config.workDir, ctx.jobId);
    const result = await produce(ctx, workspace);
    await workspace.remove();
    ctx.progress({ phase: 'done' });
    return result;
  }

  return async function processTraining(job: TrainingJobHandle, token?: string): Promise<TrainingResult> {
    if (!Value.Check(TrainingJobSchema, job.data)) {
      throw new UnrecoverableError(`invalid training request: ${Value.Errors(TrainingJobSchema, job.data).First()?.message ?? 'unknown'}`);
    }
    const log = deps.logger.child({ jobId: job.id, queue: TRAINING_QUEUE, attempt: job.attemptsMade + 1, task: job.data.task });
    const datasetWait = datasetWaitOf(job);
    // Until the folder is read, the wait stays in the progress: a try handed back at shutdown, or a
    // trainer killed meanwhile, leaves it to the next, which would otherwise start it over.
    const progress = createProgressReporter(job, log, datasetWait ? { datasetWait } : {});
    const jobId = job.id ?? 'unknown';
    const cancel = new CancellationWatch(() => deps.cancellation?.(jobId) ?? Promise.resolve(undefined), log);
    const signal = AbortSignal.any([deps.shutdownSignal, cancel.signal]);
    // Every download of a dataset mirror listens to it, as to the shutdown signal.
    setMaxListeners(64, signal);
    const ctx: JobContext = { job, jobId, token, data: job.data, log, progress, datasetWait, cancel, signal };
    try {
      await cancel.start();
      return await run(ctx);
    } catch (error) {
      // The job and its workspace are the other trainer's now: leave both as they are.
      if (error instanceof TrainingLockLostError) {
        log.warn(error.message);
        throw error;
      }
      await deferIfUnavailable(ctx, error);
      // A dataset it cannot read, or options trainModel refuses, would fail every attempt alike.
      const failure = error instanceof InvalidDatasetError || error instanceof InvalidOptionsError ? new UnrecoverableError(error.message) : error;
      if (isLastAttempt(job, failure)) await removeWorkspace(ctx);
      throw failure;
    } finally {
      cancel.stop();
      await progress.flush();
    }
  };
}
