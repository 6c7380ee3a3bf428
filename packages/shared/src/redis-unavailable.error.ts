/** Thrown when Redis does not answer, or cannot serve yet, within the allotted time at start-up or on a health check. */
export class RedisUnavailableError extends Error {
  /** The Redis URL, with any password masked. */
  readonly url: string;
  /** Why: the error Redis or the connection gave (`connect ECONNREFUSED …`), or that none came in time. */
  readonly detail: string;

  /**
   * @param options.notReady Redis answered, but that it cannot serve yet (`LOADING`, `BUSY`): it is
   * running, so the message does not ask for one to be started.
   */
  constructor(url: string, detail: string, options?: { cause?: unknown; notReady?: boolean }) {
    super(
      options?.notReady
        ? `Redis at ${url} answers but cannot serve yet (${detail}): it is running, loading its dataset or busy; raise REDIS_STARTUP_TIMEOUT_MS to wait longer for it.`
        : `Redis did not answer at ${url} (${detail}). Start one (e.g. \`redis-server\`) or point REDIS_URL at a running server.`,
      options,
    );
    this.name = 'RedisUnavailableError';
    this.url = url;
    this.detail = detail;
  }
}
