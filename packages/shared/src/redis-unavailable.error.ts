/** Thrown when Redis does not answer within the allotted time at start-up or on a health check. */
export class RedisUnavailableError extends Error {
  /** The Redis URL, with any password masked. */
  readonly url: string;
  /** Why: the error Redis or the connection gave (`connect ECONNREFUSED …`), or that none came in time. */
  readonly detail: string;

  constructor(url: string, detail: string, options?: { cause?: unknown }) {
    super(
      `Redis did not answer at ${url} (${detail}). Start one (e.g. \`redis-server\`) or point REDIS_URL at a running server.`,
      options,
    );
    this.name = 'RedisUnavailableError';
    this.url = url;
    this.detail = detail;
  }
}
