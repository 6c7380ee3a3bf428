import { ConfigError } from '../config/config-error.js';
import { waitAtStart, type StartWaitOptions } from '../wait-at-start.js';
import type { ObjectStore } from './object-store.js';
import { isStoreUnavailable } from './store-unavailable.js';

/** How a service waits for S3 while it starts. */
export interface StoreWaitOptions extends StartWaitOptions {
  /** Longest wait between two tries (default 30 s); the first is 1 s, and each doubles the last. */
  maxDelayMs?: number;
}

const FIRST_DELAY_MS = 1000;
const DEFAULT_MAX_DELAY_MS = 30_000;

/**
 * Runs one start-up step that needs S3 until it gets through, waiting while S3 is unavailable (see
 * `isStoreUnavailable`: refused or reset connections, a name that does not resolve yet, time-outs,
 * 5xx), for as long as it takes: services that Docker Compose starts together with MinIO may be up
 * before it. Every other error is the step's own and is thrown at once.
 *
 * Logs `S3 unreachable at start-up; waiting for it` at error on the first failure and at warn on each
 * later try (see {@link waitAtStart}), and `S3 reachable; start-up goes on` once it answers.
 *
 * @param step what the step does, for the log (`bucket`, `evaluation sets`, `model registry`)
 */
export async function waitForStore<T>(step: string, attempt: () => Promise<T>, options: StoreWaitOptions): Promise<T> {
  const s3 = { name: 'S3', isUnavailable: isStoreUnavailable, firstDelayMs: FIRST_DELAY_MS, maxDelayMs: options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS };
  return waitAtStart(s3, step, attempt, options);
}

/** The HTTP status of an answer S3 gave, if an SDK error carries one. */
function answeredStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/**
 * The setting at fault when S3 answers the bucket's check with a refusal: the credentials (401,
 * 403), the region (a redirect to another one) or else the bucket (a name S3 refuses). Undefined
 * for an error that is no answer of S3's.
 */
export function bucketRefusal(error: unknown, bucket: string): ConfigError | undefined {
  const status = answeredStatus(error);
  if (status === undefined || isStoreUnavailable(error)) return undefined;
  const answer = `${status} ${(error as Error).name}`;
  if (status === 401 || status === 403) {
    return new ConfigError([{ env: 'S3_ACCESS_KEY_ID', message: `S3 refused access to bucket ${bucket} (${answer}): check it, S3_SECRET_ACCESS_KEY and the bucket's owner` }]);
  }
  if (status === 301 || (error as Error).name === 'PermanentRedirect') {
    return new ConfigError([{ env: 'S3_REGION', message: `bucket ${bucket} is in another region (${answer})` }]);
  }
  return new ConfigError([{ env: 'S3_BUCKET', message: `S3 refused bucket ${bucket} (${answer})` }]);
}

/**
 * Creates the bucket if it is missing, waiting for S3 as {@link waitForStore} does.
 *
 * @throws ConfigError when S3 answers with a refusal no wait would change ({@link bucketRefusal})
 */
export async function openBucket(store: ObjectStore, options: StoreWaitOptions): Promise<void> {
  try {
    await waitForStore('bucket', () => store.ensureBucket(), options);
  } catch (error) {
    throw bucketRefusal(error, store.bucket) ?? error;
  }
}
