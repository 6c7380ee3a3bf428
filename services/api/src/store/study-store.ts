import type { Redis, ResultMessage } from '@btd/shared';
import type { HeldClaim } from './idempotency-store.js';
import type { RecordKeys } from './record-keys.js';
import { JSON_FIELDS, fromHash, hashFromPairs, toHash, type ImageRecord, type StudyRecord, type StudyState } from './records.js';
import { applyResultScript, createStudyScript, eraseStudyScript, removeStudyScript } from './study-scripts.js';

/** What applying a result changed. */
export interface AppliedResult {
  /** False when this result had been applied before (a redelivery). */
  readonly applied: boolean;
  /** 'missing' when the image was gone (its study erased): nothing was changed. */
  readonly studyState: StudyState | 'missing';
  /** The batch's state after the update, or undefined for a study outside batches. */
  readonly batchState?: string;
  /** The study as it stands after the update, once it has finished (done or failed). */
  readonly finishedStudy?: StudyRecord;
}

/** What erasing a study did. */
export interface ErasedStudy {
  /**
   * 'erased' (it had finished), 'erased_unfinished' (it was still queued or processing: results may
   * still come), 'missing' (erased before, or never there) or 'in_progress' (left whole).
   */
  readonly outcome: 'erased' | 'erased_unfinished' | 'missing' | 'in_progress';
  /** The state of the batch of a study erased unfinished, which its erasure may have completed. */
  readonly batchState?: string;
}

/** Thrown when a study is added to a batch that is closed or gone. */
export class BatchNotOpenError extends Error {
  constructor(readonly batchState: string) {
    super(`batch is ${batchState}`);
    this.name = 'BatchNotOpenError';
  }
}

/** Thrown when a study or batch is created under an Idempotency-Key claim that lapsed and was taken by another request. */
export class ClaimLostError extends Error {
  constructor() {
    super('the Idempotency-Key claim lapsed before the records were stored');
    this.name = 'ClaimLostError';
  }
}

/** Studies and their images, as Redis hashes with per-client and per-batch indexes. */
export class StudyStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RecordKeys,
  ) {}

  /**
   * Creates a study with its images atomically; with the request's Idempotency-Key `claim`, only
   * while the key still holds it, which the entry naming the study then replaces.
   * @throws BatchNotOpenError when `study.batchId` names a batch that no longer takes studies
   * @throws ClaimLostError when the claim lapsed and another request took the key
   */
  async create(study: StudyRecord, images: readonly ImageRecord[], claim?: HeldClaim): Promise<void> {
    const batchId = study.batchId ?? '';
    const keys = [
      ...this.studyKeys(study),
      // Without an external id, PERSIST on the study's own key is a harmless no-op.
      study.externalId ? this.keys.externalId(study.clientId, study.externalId) : this.keys.study(study.id),
      this.keys.pendingSubmissions,
      // Without a claim the script leaves this key alone.
      claim?.key ?? this.keys.study(study.id),
      ...images.map((image) => this.keys.image(image.id)),
    ];
    const args = [
      Date.parse(study.createdAt),
      batchId,
      JSON.stringify(toHash(study)),
      ...(claim ? [claim.entry, claim.linkedEntry(study.id), claim.ttlSeconds] : ['', '', 0]),
      ...images.map((image) => JSON.stringify(toHash(image))),
    ];
    const outcome = await createStudyScript(this.redis, keys, args);
    if (outcome === 'claim_lost') throw new ClaimLostError();
    if (outcome !== 'ok') throw new BatchNotOpenError(String(outcome));
  }

  /**
   * Removes a study that could not be fully submitted (its jobs were never enqueued), and frees its
   * externalId in the same step (see `removeStudyScript`). Its batch, if closed meanwhile with every
   * other study finished, is completed. Returns the batch's state ('' outside batches).
   */
  async remove(study: StudyRecord): Promise<string> {
    const keys = [
      ...this.studyKeys(study),
      this.keys.pendingSubmissions,
      // Without an external id the script leaves this key alone.
      study.externalId ? this.keys.externalId(study.clientId, study.externalId) : this.keys.study(study.id),
      ...study.imageIds.map((id) => this.keys.image(id)),
    ];
    const args = [study.id, study.batchId ?? '', new Date().toISOString(), study.externalId ? '1' : '0'];
    return String(await removeStudyScript(this.redis, keys, args));
  }

  /**
   * Erases a study's records and index entries in one step (see `eraseStudyScript`), with the
   * deliveries named by `deliveryIds`. A finished study's batch keeps its counts; one erased before
   * it finished leaves its batch's count, which may complete the batch. With `finishedOnly`, a study
   * still queued or processing is left whole ('in_progress').
   */
  async erase(study: StudyRecord, deliveryIds: readonly string[], finishedOnly: boolean): Promise<ErasedStudy> {
    const batchId = study.batchId ?? '';
    const keys = [
      this.keys.study(study.id),
      this.keys.clientStudies(study.clientId),
      this.keys.batchStudies(batchId),
      this.keys.batchFinished(batchId),
      this.keys.pendingSubmissions,
      // Without an externalId or an Idempotency-Key entry the script leaves these alone.
      study.externalId ? this.keys.externalId(study.clientId, study.externalId) : this.keys.study(study.id),
      study.idempotencyRecordKey ?? this.keys.study(study.id),
      this.keys.finishedStudies,
      this.keys.batch(batchId),
      ...study.imageIds.map((id) => this.keys.image(id)),
      ...deliveryIds.map((id) => this.keys.delivery(id)),
    ];
    const flags = [study.externalId ? '1' : '0', study.idempotencyRecordKey ? '1' : '0', finishedOnly ? '1' : '0'];
    const [outcome, batchState] = (await eraseStudyScript(this.redis, keys, [study.id, ...flags, new Date().toISOString()])) as [ErasedStudy['outcome'], string];
    return { outcome, ...(batchState ? { batchState } : {}) };
  }

  /** The studies that finished at or before `finishedBeforeMs`, first finished first (see `RecordKeys.finishedStudies`). */
  async finishedBefore(finishedBeforeMs: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.finishedStudies, '-inf', finishedBeforeMs, 'LIMIT', 0, limit);
  }

  /** Takes an id off the finished studies (one whose study is gone). */
  async unlistFinished(studyId: string): Promise<void> {
    await this.redis.zrem(this.keys.finishedStudies, studyId);
  }

  /** The pending submissions (records written, jobs maybe not enqueued) created at or before `createdBeforeMs`, oldest first. */
  async pendingSubmissions(createdBeforeMs: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.pendingSubmissions, '-inf', createdBeforeMs, 'LIMIT', 0, limit);
  }

  /** Whether the study is a pending submission: its records are written and its jobs maybe not enqueued. */
  async isPending(studyId: string): Promise<boolean> {
    return (await this.redis.zscore(this.keys.pendingSubmissions, studyId)) !== null;
  }

  /** Takes a study off the pending submissions: its jobs are enqueued, or it was settled otherwise. */
  async settlePending(studyId: string): Promise<void> {
    await this.redis.zrem(this.keys.pendingSubmissions, studyId);
  }

  /** The keys a study's scripts start with: the study, its client's index, its batch and the batch's index. */
  private studyKeys(study: StudyRecord): string[] {
    const batchId = study.batchId ?? '';
    return [this.keys.study(study.id), this.keys.clientStudies(study.clientId), this.keys.batch(batchId), this.keys.batchStudies(batchId)];
  }

  /** Whether the study's record is there (not erased, nor removed). */
  async exists(studyId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.study(studyId))) === 1;
  }

  /** The study, or undefined. Callers check `clientId` themselves. */
  async get(studyId: string): Promise<StudyRecord | undefined> {
    return fromHash<StudyRecord>(await this.redis.hgetall(this.keys.study(studyId)), JSON_FIELDS.study);
  }

  /** Several studies in one round trip, in the order asked (undefined for missing ones). */
  async getMany(studyIds: readonly string[]): Promise<(StudyRecord | undefined)[]> {
    if (studyIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of studyIds) pipeline.hgetall(this.keys.study(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, flat]) => {
      if (error) throw error;
      return fromHash<StudyRecord>(flat as Record<string, string>, JSON_FIELDS.study);
    });
  }

  /** The images of a study, in submission order. */
  async images(study: StudyRecord): Promise<ImageRecord[]> {
    const pipeline = this.redis.pipeline();
    for (const id of study.imageIds) pipeline.hgetall(this.keys.image(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.flatMap(([error, flat]) => {
      if (error) throw error;
      const image = fromHash<ImageRecord>(flat as Record<string, string>, JSON_FIELDS.image);
      return image ? [image] : [];
    });
  }

  /** One image, or undefined. */
  async image(imageId: string): Promise<ImageRecord | undefined> {
    return fromHash<ImageRecord>(await this.redis.hgetall(this.keys.image(imageId)), JSON_FIELDS.image);
  }

  /** A client's studies, newest first. */
  async listForClient(clientId: string, offset: number, limit: number): Promise<{ ids: string[]; total: number }> {
    const key = this.keys.clientStudies(clientId);
    const [ids, total] = await Promise.all([this.redis.zrevrange(key, offset, offset + limit - 1), this.redis.zcard(key)]);
    return { ids, total };
  }

  /** Applies a worker's result to its image, study and batch; idempotent. */
  async applyResult(study: StudyRecord, message: ResultMessage): Promise<AppliedResult> {
    const fields =
      message.kind === 'succeeded'
        ? { summary: message.summary, overlayKey: message.overlayKey, finishedAt: message.finishedAt }
        : { reason: message.reason, finishedAt: message.finishedAt };
    const batchId = study.batchId ?? '';
    const keys = [this.keys.image(message.imageId), this.keys.study(study.id), this.keys.batch(batchId), this.keys.batchFinished(batchId), this.keys.finishedStudies];
    const args = [
      message.kind === 'succeeded' ? 'done' : 'failed',
      JSON.stringify(toHash(fields)),
      message.finishedAt,
      message.kind === 'failed' ? message.reason : '',
      batchId ? '1' : '0',
      Date.parse(message.finishedAt),
    ];
    const [applied, studyState, batchState, flatStudy] = (await applyResultScript(this.redis, keys, args)) as [number, StudyState | 'missing', string, string[]?];
    const finishedStudy = fromHash<StudyRecord>(hashFromPairs(flatStudy ?? []), JSON_FIELDS.study);
    return { applied: applied === 1, studyState, ...(batchState ? { batchState } : {}), ...(finishedStudy ? { finishedStudy } : {}) };
  }
}
