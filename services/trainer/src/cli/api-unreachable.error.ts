/** The API did not answer at all: nothing listens there, the name does not resolve, or it timed out. */
export class ApiUnreachableError extends Error {
  /** Worth retrying while following a training: the API may be restarting. */
  readonly transient = true;

  constructor(url: string, cause: unknown) {
    super(`cannot reach the API at ${url} (${reasonOf(cause)}); is it running? Point to it with --api or BTD_API_URL`, { cause });
    this.name = 'ApiUnreachableError';
  }
}

function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError') return 'no answer in time';
  // fetch wraps the socket error: `TypeError: fetch failed` with the errno code (or a reason such as `bad port`) in `cause`.
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (typeof cause?.code === 'string') return cause.code;
  return typeof cause?.message === 'string' ? cause.message : error.message;
}
