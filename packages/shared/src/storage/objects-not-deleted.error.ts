/** One key a DeleteObjects request left in place, with the code and message S3 gave for it. */
export interface ObjectNotDeleted {
  readonly key: string;
  readonly code: string;
  readonly message: string;
}

/** How many refused keys the message names; {@link ObjectsNotDeletedError.failures} holds them all. */
const NAMED_IN_MESSAGE = 3;

/**
 * Thrown by {@link ObjectStore.deletePrefix} when S3 answered a DeleteObjects request (200) with
 * per-key errors: those keys are still in the bucket (AccessDenied on one key under a bucket policy,
 * InternalError or SlowDown on a busy store).
 */
export class ObjectsNotDeletedError extends Error {
  readonly bucket: string;
  readonly prefix: string;
  readonly failures: readonly ObjectNotDeleted[];

  constructor(bucket: string, prefix: string, failures: readonly ObjectNotDeleted[]) {
    const named = failures.slice(0, NAMED_IN_MESSAGE).map((failure) => `${failure.key} (${failure.code})`).join(', ');
    const more = failures.length > NAMED_IN_MESSAGE ? ` and ${failures.length - NAMED_IN_MESSAGE} more` : '';
    super(`S3 did not delete ${failures.length} object(s) under s3://${bucket}/${prefix}: ${named}${more}`);
    this.name = 'ObjectsNotDeletedError';
    this.bucket = bucket;
    this.prefix = prefix;
    this.failures = failures;
  }
}
