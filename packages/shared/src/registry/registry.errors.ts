/** Thrown when a task has no complete version under the given id. */
export class VersionNotFoundError extends Error {
  constructor(readonly task: string, readonly version: string) {
    super(`no published version ${version} of ${task}`);
    this.name = 'VersionNotFoundError';
  }
}

/** Thrown when stored bytes no longer match the digest written at publication. */
export class ArtifactIntegrityError extends Error {
  constructor(readonly task: string, readonly version: string, detail: string) {
    super(`artifact ${task}/${version} failed its integrity check: ${detail}`);
    this.name = 'ArtifactIntegrityError';
  }
}

/**
 * Thrown when a registry record (a digest, the pointer, a status) is there but stays empty or not
 * JSON over several reads: a store serving a write in progress, or a record damaged in the bucket.
 */
export class RegistryRecordUnreadableError extends Error {
  constructor(readonly key: string, readonly size: number, options?: { cause?: unknown }) {
    super(`registry record ${key} is not readable JSON (${size} bytes)`, options);
    this.name = 'RegistryRecordUnreadableError';
  }
}

/** Thrown when the pointer moved since the caller read it (optimistic check of concurrent promoters). */
export class PromotionConflictError extends Error {
  constructor(readonly task: string, readonly expected: string | null, readonly actual: string | null) {
    super(`promotion of ${task} expected ${expected ?? 'no promoted version'} to be current, found ${actual ?? 'none'}`);
    this.name = 'PromotionConflictError';
  }
}

/**
 * Thrown when a registry lock of a task (its promotion lock, or the status lock of one of its
 * versions) stays held by someone else for longer than the wait allows; `busy` says who holds it.
 */
export class PromotionLockTimeoutError extends Error {
  constructor(readonly task: string, waitedMs: number, busy = `another promotion of ${task} is in progress`) {
    super(`${busy} (waited ${waitedMs} ms)`);
    this.name = 'PromotionLockTimeoutError';
  }
}

/**
 * Thrown when a holder's lock lapsed before it wrote what the lock guards (the pointer, a status):
 * another writer may have begun, so nothing is written.
 */
export class PromotionLockLostError extends Error {
  constructor(readonly task: string, lock = `the promotion lock of ${task}`, writes = 'the pointer') {
    super(`${lock} lapsed before ${writes} was written; try again`);
    this.name = 'PromotionLockLostError';
  }
}

/** Thrown by a rollback when the history holds no earlier version to return to. */
export class NoRollbackTargetError extends Error {
  constructor(readonly task: string) {
    super(`${task} has no earlier promoted version to roll back to`);
    this.name = 'NoRollbackTargetError';
  }
}

/** Thrown when an artifact does not load or does not behave as its manifest promises. */
export class ArtifactVerificationError extends Error {
  constructor(readonly task: string, readonly version: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`model ${task}/${version} refused: ${reason}`, options);
    this.name = 'ArtifactVerificationError';
  }
}

/**
 * Thrown when what loads and runs models (a worker's model threads) cannot do it: the fault is not
 * the artifact's, so a version that meets it is retried later, never refused.
 */
export class ModelRuntimeUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModelRuntimeUnavailableError';
  }
}
