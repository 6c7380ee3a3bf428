/**
 * Redis or S3 did not answer. The error handler turns it into 503 with a `Retry-After`, so
 * producers can retry later instead of treating the request as rejected.
 */
export class DependencyUnavailableError extends Error {
  readonly dependency: 'redis' | 's3';

  constructor(dependency: 'redis' | 's3', cause?: unknown) {
    super(`${dependency} is unavailable`, { cause });
    this.name = 'DependencyUnavailableError';
    this.dependency = dependency;
  }
}
