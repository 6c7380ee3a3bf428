import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import { enqueueInferenceBulk, originalKey, type StudyPriority } from '@btd/shared';
import type { ApiContext } from '../context.js';
import { ApiError, batchNotOpen } from '../errors/api-error.js';
import { IN_PROGRESS_RETRY_AFTER_SECONDS, RetryLaterError } from '../errors/retry-later.error.js';
import { imagesIn, type AcceptedImage } from '../intake/inspect-upload.js';
import type { StudyForm } from '../intake/read-study-form.js';
import { idempotencyInProgress, type HeldClaim, type StoredResponse } from '../store/idempotency-store.js';
import type { ImageRecord, SkippedFrame, StudyRecord } from '../store/records.js';
import { BatchNotOpenError, ClaimLostError } from '../store/study-store.js';
import { UNDO_PAUSES_MS, withPauses } from '../store/with-pauses.js';
import type { SubmittedStudy } from '../schemas/study.schemas.js';
import { externalIdConflict } from './external-id-conflict.js';
import { contentOf, fingerprintOfContent, type FingerprintedContent } from './fingerprint.js';
import { fileDigest, inferenceJobsOf, resumeSubmission } from './resume-submission.js';
import { acceptedResponse } from './study-view.js';
import { undoSubmission } from './undo-submission.js';

/** Who submits, and into which batch. */
export interface SubmitTarget {
  readonly clientId: string;
  readonly batch?: { readonly id: string; readonly priority: StudyPriority };
  readonly idempotencyKey?: string;
  /**
   * The files carry no order (the instances of a STOW-RS request): a resend of the same files in
   * another order is the same submission.
   */
  readonly filesInAnyOrder?: boolean;
}

/** New random id with a readable kind prefix, e.g. `stu_3f9a…`. */
export function newId(kind: 'stu' | 'img' | 'bat'): string {
  return `${kind}_${randomBytes(10).toString('hex')}`;
}

/**
 * The images a file becomes: one, or one per frame of a multi-frame DICOM file but its blank ones, all
 * sharing its stored original.
 */
function imagesOf(accepted: AcceptedImage, studyId: string, clientId: string): ImageRecord[] {
  const { header } = accepted;
  const blank = new Set(accepted.blankFrames?.map(({ frame }) => frame));
  const frames = Array.from({ length: header.frames }, (_, frame) => frame).filter((frame) => !blank.has(frame));
  const ids = frames.map(() => newId('img'));
  const objectKey = originalKey({ clientId, studyId, imageId: ids[0]! });
  const sha256 = fileDigest(accepted.bytes);
  return frames.map((frame, i): ImageRecord => {
    const dicom = header.dicom && header.frames > 1 ? { ...header.dicom, frameNumber: frame + 1, numberOfFrames: header.frames } : header.dicom;
    return {
      id: ids[i]!,
      studyId,
      clientId,
      filename: accepted.filename,
      contentType: accepted.format.mime,
      width: header.width,
      height: header.height,
      ...(dicom ? { dicom } : {}),
      bytes: accepted.bytes.length,
      sha256,
      objectKey,
      state: 'queued',
    };
  });
}

/** The frames of `accepted` that become no image, for the study to say which and why. */
function skippedFramesOf({ filename, header, blankFrames = [] }: AcceptedImage): SkippedFrame[] {
  const sopInstanceUid = header.dicom?.sopInstanceUid;
  return blankFrames.map(({ frame, level }) => ({
    filename,
    ...(sopInstanceUid ? { sopInstanceUid } : {}),
    frameNumber: frame + 1,
    numberOfFrames: header.frames,
    reason: 'blank',
    greyLevel: level,
  }));
}

/** A file to store: its bytes under the key its images share. */
interface Original {
  key: string;
  file: AcceptedImage;
}

/** What one submission stores: its records and its originals. */
interface Submission {
  readonly study: StudyRecord;
  readonly images: ImageRecord[];
  readonly originals: Original[];
}

function buildRecords(form: StudyForm, target: SubmitTarget, fingerprint: string): Submission {
  const studyId = newId('stu');
  const perFile = form.images.map((file) => imagesOf(file, studyId, target.clientId));
  const images = perFile.flat();
  const originals = perFile.map((fileImages, i) => ({ key: fileImages[0]!.objectKey, file: form.images[i]! }));
  const skippedFrames = form.images.flatMap(skippedFramesOf);
  const study: StudyRecord = {
    id: studyId,
    clientId: target.clientId,
    ...form.fields,
    ...(target.batch ? { batchId: target.batch.id } : {}),
    priority: form.fields.priority ?? target.batch?.priority ?? 'routine',
    state: 'queued',
    createdAt: new Date().toISOString(),
    imageIds: images.map((image) => image.id),
    doneCount: 0,
    failedCount: 0,
    fingerprint,
    ...(skippedFrames.length > 0 ? { skippedFrames } : {}),
  };
  return { study, images, originals };
}

/**
 * Stores originals, records (taking over the Idempotency-Key `claim`, if any) and jobs; undoes
 * what it did if a step fails.
 */
async function persist(ctx: ApiContext, { study, images, originals }: Submission, claim: HeldClaim | undefined, log: FastifyBaseLogger) {
  try {
    // The originals and the records are written side by side; only the jobs wait for both. A multi-frame
    // file's images share one original, stored once.
    const [stored, created] = await Promise.allSettled([
      Promise.all(originals.map(({ key, file }) => ctx.objectStore.put(key, file.bytes, file.format.mime))),
      ctx.studies.create(study, images, claim),
    ]);
    if (stored.status === 'rejected') throw stored.reason;
    if (created.status === 'rejected') throw created.reason;
    await enqueueInferenceBulk(ctx.queues.inference, inferenceJobsOf(study, images));
  } catch (error) {
    log.warn({ err: error, studyId: study.id }, 'submission failed; removing what was stored');
    // Also when creating the records seemed to fail: only its reply may have been lost, and removing
    // is harmless when nothing was written. A refused creation wrote nothing.
    const recordsWritten = !(error instanceof BatchNotOpenError || error instanceof ClaimLostError);
    await undoSubmission(ctx, study, { recordsWritten, ...(claim ? { claim } : {}) }, log);
    if (error instanceof BatchNotOpenError) throw batchNotOpen(error.batchState);
    if (error instanceof ClaimLostError) throw idempotencyInProgress();
    throw error;
  }
  // Submitted: the study leaves the pending submissions. Should Redis refuse that for the whole
  // pause, the sweep finds its jobs and drops the entry later, so the answer is still 202.
  await withPauses(() => ctx.studies.settlePending(study.id), UNDO_PAUSES_MS).catch((error: unknown) => {
    log.warn({ err: error, studyId: study.id }, 'could not take the study off the pending submissions; the sweep will');
  });
}

/**
 * Claims the study's external id. When another submission holds it, answers with that study if
 * this is a retry of it (same fingerprint), resuming it if its request died before its jobs were
 * enqueued, or 409 otherwise. While the holder is still being stored it waits, up to 15 s: its
 * request may yet fail and remove it, and answering with it then would name a study that is gone.
 * Once the holder is gone (its request undid it, or its claim lapsed as it died half-way), the id
 * is claimed afresh.
 */
async function claimExternalId(
  ctx: ApiContext,
  study: StudyRecord,
  externalId: string,
  content: FingerprintedContent,
  files: readonly AcceptedImage[],
  log: FastifyBaseLogger,
): Promise<StoredResponse | undefined> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const holderId = await ctx.externalIds.claim(study.clientId, externalId, study.id);
    if (!holderId) return undefined;
    const holder = await ctx.studies.get(holderId);
    if (holder && holder.fingerprint !== study.fingerprint) throw externalIdConflict(holder, await ctx.studies.images(holder), { content, study });
    const found = holder ? await resumeSubmission(ctx, holderId, files, log) : undefined;
    if (found?.state === 'finished') return { ...found.response, replayed: true };
    if (Date.now() > deadline) {
      const seconds = IN_PROGRESS_RETRY_AFTER_SECONDS;
      throw new RetryLaterError(409, 'external_id_in_progress', `a submission with this externalId is still running; retry after ${seconds} seconds`, seconds);
    }
    await sleep(50);
  }
}

async function createStudy(ctx: ApiContext, form: StudyForm, target: SubmitTarget, content: FingerprintedContent, claim: HeldClaim | undefined, log: FastifyBaseLogger) {
  const submission = buildRecords(form, target, fingerprintOfContent(content));
  const { study, images } = submission;
  if (study.externalId) {
    const existing = await claimExternalId(ctx, study, study.externalId, content, form.images, log);
    if (existing) return existing;
  }
  // A failure undoes the submission, and frees its external id, inside.
  await persist(ctx, submission, claim, log);
  log.info({ studyId: study.id, images: images.length, priority: study.priority, batchId: study.batchId }, 'study queued');
  return acceptedResponse(study, images);
}

/** Whether the study a remembered answer names is still there (an erased one is not). */
async function answeredStudyExists(ctx: ApiContext, response: StoredResponse): Promise<boolean> {
  const { studyId } = response.body as Partial<SubmittedStudy>;
  return studyId === undefined || ctx.studies.exists(studyId);
}

/**
 * Submits a checked study: stores the originals under deterministic keys, creates the records
 * and enqueues one inference job per image (per frame of a multi-frame DICOM file). A repeated `Idempotency-Key` or `externalId`
 * returns the first submission's ids without new work, resuming that submission first if its
 * request died before its jobs were enqueued.
 */
export async function submitStudy(ctx: ApiContext, form: StudyForm, target: SubmitTarget, log: FastifyBaseLogger) {
  const count = form.images.reduce((sum, image) => sum + imagesIn(image), 0);
  const limit = ctx.config.maxImagesPerStudy;
  if (count > limit) {
    throw new ApiError(413, 'too_many_images', `the study holds ${count} images (each frame of a multi-frame DICOM file is one); at most ${limit} per study`);
  }
  const content = contentOf(form, target.batch?.id, target.filesInAnyOrder);
  return ctx.idempotency.run(target.clientId, target.idempotencyKey, fingerprintOfContent(content), (claim) => createStudy(ctx, form, target, content, claim, log), {
    log,
    // A retry of a submission whose request died answers with (and resumes) that study.
    resume: (studyId) => resumeSubmission(ctx, studyId, form.images, log),
    // A key whose answer names a study since erased makes a new study, as the erased study's own key does.
    stillThere: (response) => answeredStudyExists(ctx, response),
  });
}
