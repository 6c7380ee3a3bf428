import { performance } from 'node:perf_hooks';
import { Value } from '@sinclair/typebox/value';
import { UnrecoverableError, type Job } from 'bullmq';
import { ImageDecodeError, renderOverlay } from '@btd/model';
import {
  InferenceJobSchema,
  ObjectNotFoundError,
  overlayKey,
  postResult,
  resultJobId,
  resultKey,
  type InferenceJob,
  type Logger,
  type ObjectStore,
  type ResultMessage,
  type ResultsQueue,
  type MemoryBudget,
  type S3Outage,
} from '@btd/shared';
import type { ModelLease, ModelProvider, ServedModel } from './model-provider.js';
import type { OriginalReader } from './original-reader.js';
import { decodeWithin, jobDecodeBytes } from './decode-memory.js';
import { analysisTimings, timed, type TimedPrediction } from './job-timings.js';
import { imageResultDocument, resultSummary, type TaskOutcome } from './result-documents.js';

/** What the processor needs; all long-lived, owned by the caller. */
export interface InferenceProcessorDeps {
  store: ObjectStore;
  /** Where the originals are read from (the store, keeping multi-frame files between their frames). */
  originals: OriginalReader;
  results: ResultsQueue;
  models: ModelProvider;
  /** The memory jobs decode and analyse their images in at once; without it, as many as run at once. */
  decodeMemory?: MemoryBudget;
  logger: Logger;
  /** Run a job's two models at once (they are on threads of their own) instead of one after the other. */
  parallelModels?: boolean;
  /** Defers jobs that find S3 unreachable without spending their attempts; without it, an outage fails attempts like any error. */
  outage?: S3Outage;
}

/** Return value of a completed job, kept (small) in Redis with the job. */
export interface InferenceJobReturn {
  label: string;
  tumorProbability: number;
  typeLabel: string;
}

/** Turns input problems into `UnrecoverableError`s: retrying cannot fix them. */
function asPermanent(error: unknown): UnrecoverableError | undefined {
  if (error instanceof UnrecoverableError) return error;
  // The message says what is wrong with the image ("not a decodable image: …", "DICOM modality is CT; …").
  if (error instanceof ImageDecodeError) return new UnrecoverableError(error.message);
  if (error instanceof ObjectNotFoundError) return new UnrecoverableError('the original image is missing from storage');
  return undefined;
}

/** Whether BullMQ will not retry this job if the current attempt fails. */
function isLastAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

function parsePayload(data: unknown): InferenceJob {
  if (Value.Check(InferenceJobSchema, data)) return data;
  const first = Value.Errors(InferenceJobSchema, data).First();
  throw new UnrecoverableError(`invalid inference job payload: ${first?.path ?? ''} ${first?.message ?? ''}`.trim());
}

/**
 * Creates the processor of inference jobs: read the original, run both models (the binary one
 * with its heatmap), write the result documents and overlay under deterministic keys, then post
 * the result. A job run again after its result was posted writes nothing and posts nothing; one
 * that crashed before posting rewrites the same objects (the result's job id is derived from the
 * image id, so at most one result goes out), so a retry after a crash is harmless.
 *
 * Bad input fails at once with `UnrecoverableError` and a `failed` result. S3 being unreachable
 * defers the job without spending an attempt (see `S3Outage`), within its outage budget. Other
 * errors are retried by BullMQ, and a `failed` result is posted only when the last attempt fails.
 */
export function createInferenceProcessor(deps: InferenceProcessorDeps): (job: Job<InferenceJob>, token?: string) => Promise<InferenceJobReturn> {
  return async (job, token) => {
    const payload = parsePayload(job.data);
    // Take both models once, so a hot swap mid-job cannot mix versions within one result, and hold
    // them: a replaced model stays loaded until this job is done with it, however long it takes.
    const leases = takeModels(deps.models);
    try {
      return await processWith(deps, { job, token, payload }, leases.binary.model, leases.type.model);
    } finally {
      leases.binary.release();
      leases.type.release();
    }
  };
}

/** Leases on both models, or none if the second cannot be had. */
function takeModels(models: ModelProvider): { binary: ModelLease; type: ModelLease } {
  const binary = models.acquire('tumor-binary');
  try {
    return { binary, type: models.acquire('tumor-type') };
  } catch (error) {
    binary.release();
    throw error;
  }
}

/** A job being run: the job, the token of its lock and its checked payload. */
interface RunningJob {
  job: Job<InferenceJob>;
  token: string | undefined;
  payload: InferenceJob;
}

/**
 * Runs the job on the models it took. S3 unreachable defers it; a failure on the last attempt, or
 * for good, posts a `failed` result.
 */
async function processWith(deps: InferenceProcessorDeps, { job, token, payload }: RunningJob, binary: ServedModel, type: ServedModel): Promise<InferenceJobReturn> {
  const log = deps.logger.child({
    jobId: job.id,
    queue: job.queueName,
    attempt: job.attemptsMade + 1,
    modelVersion: `${binary.version}+${type.version}`,
  });
  try {
    const analysed = await analyse(deps, payload, binary, type, log);
    await deps.outage?.reachable(job);
    return analysed;
  } catch (error) {
    await deps.outage?.deferIfUnavailable(job, token, error, log);
    const permanent = asPermanent(error);
    if (permanent || isLastAttempt(job)) {
      const reason = (permanent ?? (error as Error)).message;
      await postFailure(deps.results, payload, reason);
      log.warn({ reason, permanent: permanent !== undefined }, 'image failed; failure posted');
    } else {
      log.warn({ err: error }, 'attempt failed; will retry');
    }
    throw permanent ?? error;
  }
}

/** Posts a `failed` result; like every result, at most once per image. */
export async function postFailure(results: ResultsQueue, job: InferenceJob, reason: string): Promise<void> {
  const { studyId, imageId, clientId } = job;
  await postResult(results, { kind: 'failed', studyId, imageId, clientId, finishedAt: new Date().toISOString(), reason });
}

/** The result already posted for an image, if any (kept with its job for a day; see RESULT_JOB_OPTIONS). */
async function postedResult(results: ResultsQueue, imageId: string): Promise<ResultMessage | undefined> {
  const posted = await results.getJob(resultJobId(imageId));
  return posted?.data;
}

interface Predicted {
  binary: TimedPrediction;
  type: TimedPrediction;
  overlay: Uint8Array;
}

/**
 * Both results, once both are settled: the first failure is thrown only after the other branch has
 * finished too, so the job gives back its decode memory when nothing works on its image any more
 * (a model that refuses an image at once must not free the memory an overlay still renders in).
 */
async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [first, second] = await Promise.allSettled([a, b]);
  if (first.status === 'rejected') throw first.reason;
  if (second.status === 'rejected') throw second.reason;
  return [first.value, second.value];
}

/** One model after the other, on this thread; the overlay renders (in sharp's pool) during the second. */
async function predictInTurn(image: Uint8Array, frame: number, binaryModel: ServedModel, typeModel: ServedModel): Promise<Predicted> {
  const binary = await timed(binaryModel.predict(image, { heatmap: true, frame }));
  const [overlay, type] = await bothSettled(renderOverlay(image, binary.prediction, frame), timed(typeModel.predict(image, { heatmap: false, frame })));
  return { binary, type, overlay };
}

/** Both models at once, each on a thread of its own; the overlay renders as soon as the binary model is done. */
async function predictSideBySide(image: Uint8Array, frame: number, binaryModel: ServedModel, typeModel: ServedModel): Promise<Predicted> {
  const binaryAndOverlay = timed(binaryModel.predict(image, { heatmap: true, frame })).then(async (binary) => ({
    binary,
    overlay: await renderOverlay(image, binary.prediction, frame),
  }));
  const [{ binary, overlay }, type] = await bothSettled(binaryAndOverlay, timed(typeModel.predict(image, { heatmap: false, frame })));
  return { binary, type, overlay };
}

async function analyse(
  deps: InferenceProcessorDeps,
  job: InferenceJob,
  binaryModel: ServedModel,
  typeModel: ServedModel,
  log: Logger,
): Promise<InferenceJobReturn> {
  const started = performance.now();
  const posted = await postedResult(deps.results, job.imageId);
  if (posted) {
    // Run again after its result went out (a lost lock, a crash after posting): the documents and
    // overlay must stay those the posted result describes, even if the models changed since.
    log.info({ kind: posted.kind }, 'result already posted; nothing to redo');
    if (posted.kind === 'failed') throw new UnrecoverableError(posted.reason);
    return { label: posted.summary.label, tumorProbability: posted.summary.tumorProbability, typeLabel: posted.summary.typeLabel };
  }
  const downloading = performance.now();
  const image = await deps.originals.get(job.objectKey, job.frame !== undefined);
  const downloaded = performance.now();
  // The image is decoded (for the models, then for the overlay) and analysed within the decode memory.
  const predict = () => (deps.parallelModels ? predictSideBySide : predictInTurn)(image, job.frame ?? 0, binaryModel, typeModel);
  const predicted = deps.decodeMemory ? await decodeWithin(deps.decodeMemory, await jobDecodeBytes(image), predict) : await predict();
  const binary: TaskOutcome = { model: binaryModel, prediction: predicted.binary.prediction };
  const type: TaskOutcome = { model: typeModel, prediction: predicted.type.prediction };
  const overlay = predicted.overlay;
  const predictedAt = performance.now();

  const finishedAt = new Date().toISOString();
  // One document for both models: every object stored costs a request to the store on each side.
  const documentKey = resultKey(job.imageId);
  const resultKeys = { 'tumor-binary': documentKey, 'tumor-type': documentKey };
  await Promise.all([
    deps.store.put(overlayKey(job.imageId), overlay, 'image/png'),
    deps.store.putJson(documentKey, imageResultDocument(job, [binary, type], finishedAt)),
  ]);
  const uploaded = performance.now();

  // On the job's clock: the models' parts count once where they ran side by side, and the total
  // (from the job's start) holds every part.
  const summary = resultSummary(binary, type, {
    downloadMs: downloaded - downloading,
    ...analysisTimings([predicted.binary, predicted.type]),
    uploadMs: uploaded - predictedAt,
    totalMs: uploaded - started,
  });
  const { studyId, imageId, clientId } = job;
  await postResult(deps.results, { kind: 'succeeded', studyId, imageId, clientId, finishedAt, resultKeys, overlayKey: overlayKey(imageId), summary });
  log.info({ label: summary.label, tumorProbability: summary.tumorProbability, typeLabel: summary.typeLabel, timings: summary.timings }, 'image analysed');
  return { label: summary.label, tumorProbability: summary.tumorProbability, typeLabel: summary.typeLabel };
}
