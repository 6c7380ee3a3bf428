/** The API answered with an error status; the message says what to do about it. */
export class ApiRequestError extends Error {
  readonly status: number;
  /** The API's machine-readable reason, e.g. `forbidden` or `not_found`. */
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiRequestError';
    this.status = status;
    this.code = code;
  }

  /** Worth retrying while following a training: a gateway or dependency outage. */
  get transient(): boolean {
    return this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/** The error body every API route answers with. */
interface ErrorBody {
  code?: string;
  message?: string;
  error?: string;
}

/** Turns an error answer into an {@link ApiRequestError} whose message tells the operator what went wrong. */
export function apiRequestError(status: number, body: unknown): ApiRequestError {
  const { code = 'unknown', message, error } = (typeof body === 'object' && body !== null ? body : {}) as ErrorBody;
  const said = message ?? (typeof body === 'string' && body ? body.slice(0, 200) : error ?? `status ${status}`);
  switch (status) {
    case 401:
      return new ApiRequestError(status, code, `the API did not accept the key (${said}); pass --key or set BTD_API_KEY`);
    case 403:
      return new ApiRequestError(status, code, `not an admin key (${said}): trainings are started with the key of a client listed in the API's ADMIN_CLIENTS`);
    case 404:
      return new ApiRequestError(status, code, said);
    case 400:
    case 409:
    case 422:
      return new ApiRequestError(status, code, `the API refused the request: ${said}`);
    default:
      return new ApiRequestError(status, code, `the API answered ${status}: ${said}`);
  }
}
