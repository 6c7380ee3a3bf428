import { isStoreUnavailable } from '@btd/shared';
import { DependencyUnavailableError } from './dependency-unavailable.error.js';

const REDIS_DOWN = /enableOfflineQueue|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|max retries per request/i;
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/**
 * Which dependency an error says is unreachable, if any: Redis rejecting commands while
 * disconnected, or the S3 endpoint unreachable, timing out, answering 5xx or throttling.
 */
export function unavailableDependency(error: unknown): 'redis' | 's3' | undefined {
  if (error instanceof DependencyUnavailableError) return error.dependency;
  if (!(error instanceof Error)) return undefined;
  if (isStoreUnavailable(error)) return 's3';
  const code = (error as { code?: string }).code ?? '';
  if (error.name === 'MaxRetriesPerRequestError' || REDIS_DOWN.test(error.message)) {
    return /s3|bucket/i.test(error.message) ? 's3' : 'redis';
  }
  if (NETWORK_CODES.has(code)) return 'redis';
  return undefined;
}
