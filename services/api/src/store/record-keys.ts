import { createHash } from 'node:crypto';

function digest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 40);
}

/**
 * Redis keys of the API's records, under the deployment's queue prefix so tests and
 * deployments sharing one Redis never see each other's data. Client-supplied strings
 * (external ids, idempotency keys) are hashed so they never appear in key names.
 */
export interface RecordKeys {
  study(studyId: string): string;
  image(imageId: string): string;
  batch(batchId: string): string;
  /** Sorted set of a batch's study ids, scored by submission order (for paging). */
  batchStudies(batchId: string): string;
  /** Set of a batch's finished study ids, so each is counted once. */
  batchFinished(batchId: string): string;
  clientStudies(clientId: string): string;
  clientBatches(clientId: string): string;
  externalId(clientId: string, externalId: string): string;
  idempotency(clientId: string, idempotencyKey: string): string;
  delivery(deliveryId: string): string;
  /**
   * Sorted set of the studies whose submission has written its records but not yet enqueued its
   * jobs, scored by createdAt (ms); what a killed API leaves here is settled by the sweep.
   */
  readonly pendingSubmissions: string;
  /** Held (SET NX PX) by the API replica sweeping the pending submissions. */
  readonly pendingSweepLock: string;
  /**
   * Sorted set of the originals failed submissions left in the bucket while S3 refused their
   * removal (`{"clientId","studyId"}`), scored by when (ms); the sweep removes them.
   */
  readonly leftOriginals: string;
  /**
   * Sorted set of the finished (done or failed) studies, scored by when they finished (completedAt,
   * ms): what the retention sweep erases, first finished first, `STUDY_RETENTION_DAYS` after that.
   */
  readonly finishedStudies: string;
  /** Set once the studies finished before {@link finishedStudies} existed have been listed in it. */
  readonly finishedStudiesIndexed: string;
  /** Held (SET NX PX) by the API replica sweeping the studies past their retention. */
  readonly retentionSweepLock: string;
  /**
   * Held (SET NX PX) by whoever settles one pending submission: the sweep, a retry that resumes it,
   * or its own request undoing it after a failure; so that one never undoes what another completes.
   */
  submissionLock(studyId: string): string;
  /** Pattern matching every record key, for clean-up in tests. */
  readonly all: string;
}

/** Builds the key scheme for one queue prefix. */
export function recordKeys(prefix: string): RecordKeys {
  const base = `${prefix}:api`;
  return {
    study: (id) => `${base}:study:${id}`,
    image: (id) => `${base}:image:${id}`,
    batch: (id) => `${base}:batch:${id}`,
    batchStudies: (id) => `${base}:batch:${id}:studies`,
    batchFinished: (id) => `${base}:batch:${id}:finished`,
    clientStudies: (client) => `${base}:client:${client}:studies`,
    clientBatches: (client) => `${base}:client:${client}:batches`,
    externalId: (client, externalId) => `${base}:client:${client}:external:${digest(externalId)}`,
    idempotency: (client, key) => `${base}:client:${client}:idempotency:${digest(key)}`,
    delivery: (id) => `${base}:delivery:${id}`,
    pendingSubmissions: `${base}:pending-submissions`,
    pendingSweepLock: `${base}:pending-submissions:lock`,
    leftOriginals: `${base}:left-originals`,
    finishedStudies: `${base}:finished-studies`,
    finishedStudiesIndexed: `${base}:finished-studies:indexed`,
    retentionSweepLock: `${base}:retention:lock`,
    submissionLock: (id) => `${base}:submission-lock:${id}`,
    all: `${base}:*`,
  };
}
