import { ObjectReadInterruptedError } from './object-read-interrupted.error.js';
import { ObjectsNotDeletedError } from './objects-not-deleted.error.js';

/** What the AWS SDK attaches to the errors of its requests, as far as telling an outage goes. */
interface SdkErrorShape {
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

/** Answers saying the request was not read in time: S3's 400 `RequestTimeout` and its kin. */
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

/** Per-key codes of a DeleteObjects answer that say the store was busy or failing, not the request refused. */
const BUSY_CODES = new Set(['InternalError', 'ServiceUnavailable', 'SlowDown']);

/**
 * Whether an S3 request failed because the store could not be reached or could not serve it, rather
 * than because of what was asked: a missing object (404), a refused request (403) or a bad body are
 * not outages, and waiting would not change their outcome.
 *
 * The SDK marks the errors of its requests with `$metadata`, which holds the HTTP status when an
 * answer came. With none, the request never got one: connection refused or reset, a time-out, a
 * name that does not resolve (as while a store's container restarts under Docker Compose). With one,
 * 5xx, 429, a request time-out, or what the SDK itself marks retryable (throttling) is an outage.
 * So is an object whose body S3 broke off once it had answered ({@link ObjectReadInterruptedError}):
 * the SDK's part ends with the headers, and the socket's error that follows carries no `$metadata`.
 * Keys a DeleteObjects answer lists as not deleted ({@link ObjectsNotDeletedError}) are an outage
 * when every one of them failed for the store's sake (InternalError, SlowDown), not for AccessDenied.
 */
export function isStoreUnavailable(error: unknown): boolean {
  if (error instanceof ObjectReadInterruptedError) return true;
  if (error instanceof ObjectsNotDeletedError) return error.failures.every((failure) => BUSY_CODES.has(failure.code));
  if (!(error instanceof Error) || !('$metadata' in error)) return false;
  const { $metadata, $retryable } = error as Error & SdkErrorShape;
  const status = $metadata?.httpStatusCode;
  return status === undefined || status >= 500 || status === 429 || TIMEOUT_NAMES.has(error.name) || Boolean($retryable);
}
