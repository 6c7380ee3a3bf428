import type { FastifyBaseLogger } from 'fastify';
import type { ApiContext } from '../context.js';
import type { HeldClaim } from '../store/idempotency-store.js';
import type { StudyRecord } from '../store/records.js';
import { UNDO_PAUSES_MS, withPauses } from '../store/with-pauses.js';
import { announceBatchCompleted } from '../webhooks/completion-events.js';
import { removeOriginals } from './left-originals.js';
import { withSubmissionLock } from './resume-submission.js';

/** What a failed submission has to undo besides its originals and its externalId claim. */
export interface Undo {
  /** False when the records' creation was refused (nothing written). */
  readonly recordsWritten: boolean;
  /** Its Idempotency-Key claim, which the records took over once written. */
  readonly claim?: HeldClaim;
}

/** Thrown (and retried through the pauses) while a retry resuming the submission holds its lock. */
class SubmissionLockedError extends Error {
  constructor(studyId: string) {
    super(`submission of ${studyId} is being resumed`);
    this.name = 'SubmissionLockedError';
  }
}

/**
 * Removes the records of a study whose jobs were never enqueued (with its pending-submission entry
 * and its externalId mapping); a batch that this completes is announced. Idempotent: the batch's
 * count is given back once, and its completion is delivered once however often it is announced.
 */
export async function removeStudyRecords(ctx: ApiContext, study: StudyRecord): Promise<void> {
  const batchState = await ctx.studies.remove(study);
  if (study.batchId && batchState === 'done') await announceBatchCompleted(ctx, study.batchId);
}

/**
 * Removes what a failed submission stored, each Redis step waiting out a short Redis outage: left
 * behind, the study would stay queued with no job until the sweep of pending submissions removes
 * it, and its externalId and Idempotency-Key would answer retries with it. The records go with the
 * externalId mapping in one step, and the claims are freed before the originals' slow removal, so
 * that an API that dies during it leaves no externalId naming a study that is gone. Originals that
 * S3 refuses to remove are left to the sweep. A batch that this completes is announced.
 */
async function removeSubmission(ctx: ApiContext, study: StudyRecord, undo: Undo, log: FastifyBaseLogger): Promise<void> {
  const { clientId, externalId } = study;
  const step = async (work: () => Promise<unknown>, failure: string) =>
    withPauses(work, UNDO_PAUSES_MS).catch((error: unknown) => log.error({ err: error, studyId: study.id }, failure));
  if (undo.recordsWritten) await step(() => removeStudyRecords(ctx, study), 'could not remove study record nor free its externalId');
  // A refused creation left the claim as it was made, which would only lapse after its TTL.
  else if (externalId) await step(() => ctx.externalIds.release(clientId, externalId, study.id), 'could not free the externalId of a failed submission');
  const { claim } = undo;
  if (claim && undo.recordsWritten) await step(() => ctx.idempotency.unlink(claim, study.id), 'could not free the Idempotency-Key of a failed submission');
  await removeOriginals(ctx, study, log);
}

/** Under the submission's lock: removes what it stored, unless a retry resumed it; true when it did. */
async function undoLocked(ctx: ApiContext, study: StudyRecord, undo: Undo, log: FastifyBaseLogger): Promise<boolean> {
  // Resumed: its jobs are enqueued and a retry answered with it, so it stays.
  if ((await ctx.studies.get(study.id)) && !(await ctx.studies.isPending(study.id))) return false;
  await removeSubmission(ctx, study, undo, log);
  return true;
}

/**
 * Undoes a failed submission (records, originals, externalId and Idempotency-Key claims) under its
 * lock, which a retry resuming the submission holds while it works: the undo waits for it through
 * the pauses, and then leaves the resumed study alone. Should Redis refuse the lock for all the
 * pauses, it removes what it can without (no retry can resume a submission without Redis either);
 * what stays is settled by the sweep of pending submissions.
 */
export async function undoSubmission(ctx: ApiContext, study: StudyRecord, undo: Undo, log: FastifyBaseLogger): Promise<void> {
  const locked = async () => {
    const held = await withSubmissionLock(ctx, study.id, () => undoLocked(ctx, study, undo, log));
    if (!held.acquired) throw new SubmissionLockedError(study.id);
    return held.value;
  };
  try {
    if (!(await withPauses(locked, UNDO_PAUSES_MS))) log.warn({ studyId: study.id }, 'a retry resumed the failed submission; its study stays');
  } catch (error) {
    if (error instanceof SubmissionLockedError) {
      log.warn({ studyId: study.id }, 'a retry is resuming the failed submission; it is left to it');
      return;
    }
    log.error({ err: error, studyId: study.id }, 'could not lock the failed submission; removing what can be removed');
    await removeSubmission(ctx, study, undo, log);
  }
}
