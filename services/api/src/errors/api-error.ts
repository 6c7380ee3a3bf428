/**
 * An error whose message is meant for the client: the error handler answers with its status,
 * code and message as they are. Anything else that reaches the handler is a 5xx with a generic
 * message, so internal details never leak.
 */
export class ApiError extends Error {
  readonly statusCode: number;
  /** Stable, machine-readable reason, e.g. `image_truncated`. */
  readonly code: string;
  /** Extra fields merged into the response body (e.g. the offending file name). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(statusCode: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = statusCode;
    this.code = code;
    this.details = details;
  }
}

/** 409 for a study added to a batch that is closed (or done). */
export function batchNotOpen(state: string): ApiError {
  return new ApiError(409, 'batch_not_open', `the batch is ${state} and takes no more studies`);
}

/** 404 that does not reveal whether the resource exists for another client. */
export function notFound(what: string, id: string): ApiError {
  return new ApiError(404, 'not_found', `${what} ${id} not found`);
}
