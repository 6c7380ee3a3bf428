import { DependencyUnavailableError } from './dependency-unavailable.error.js';

const REDIS_DOWN = /enableOfflineQueue|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|max retries per request/i;
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

function isS3Error(error: object): boolean {
  return '$metadata' in error || (error as { name?: string }).name === 'TimeoutError';
}

/**
 * Which dependency an error says is unreachable, if any: Redis rejecting commands while
 * disconnected, or the S3 endpoint refusing connections or answering 5xx.
 */
export function unavailableDependency(error: unknown): 'redis' | 's3' | undefined {
  if (error instanceof DependencyUnavailableError) return error.dependency;
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: string }).code ?? '';
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (isS3Error(error) && (status === undefined || status >= 500 || NETWORK_CODES.has(code))) return 's3';
  if (error.name === 'MaxRetriesPerRequestError' || REDIS_DOWN.test(error.message)) {
    return /s3|bucket/i.test(error.message) ? 's3' : 'redis';
  }
  if (NETWORK_CODES.has(code)) return 'redis';
  return undefined;
}
