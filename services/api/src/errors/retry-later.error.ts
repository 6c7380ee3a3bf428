import { ApiError } from './api-error.js';

/**
 * A request refused for now, not for what it holds: the error handler answers with its status and
 * code and a `Retry-After`, so that a client such as a PACS sends it again later instead of giving up.
 */
export class RetryLaterError extends ApiError {
  readonly retryAfterSeconds: number;

  constructor(statusCode: number, code: string, message: string, retryAfterSeconds: number) {
    super(statusCode, code, message);
    this.name = 'RetryLaterError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** How long a client is asked to wait when the request it retries (same Idempotency-Key or externalId) is still at work. */
export const IN_PROGRESS_RETRY_AFTER_SECONDS = 5;
