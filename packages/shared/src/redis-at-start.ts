import { ConfigError } from './config/config-error.js';
import { RedisUnavailableError } from './redis-unavailable.error.js';
import { maskRedisUrl, pingRedis, waitForRedis, type Redis } from './redis.js';
import { waitAtStart, type StartWaitOptions } from './wait-at-start.js';

/** How a service waits for Redis while it starts. */
export interface RedisStartOptions extends StartWaitOptions {
  /** How long to wait for Redis in all before giving up (`REDIS_STARTUP_TIMEOUT_MS`; 0: one try). */
  timeoutMs: number;
}

/** Tries at start-up: after 0.5 s, then doubling up to one every 5 s. */
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 5000;
/** How long one try may take to connect and get its PONG. */
const TRY_TIMEOUT_MS = 5000;
/**
 * How long the service's own connection may take to be ready once Redis answered: it reconnects
 * at most 2 s apart, and waits up to 10 s between its checks of a Redis that was still loading.
 */
const CONNECTION_READY_MS = 15_000;

/** Replies refusing the connection whatever the wait: its credentials, its user's rights, its database. */
const REFUSAL = /^(NOAUTH|WRONGPASS|NOPERM)\b|invalid (username-)?password|DB index is out of range/;
/** Replies of a Redis that is there but cannot serve yet: loading its dataset, running a long script, a replica without its master. */
const NOT_YET = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN)\b/;

/** The error behind a failed ping: what Redis answered or the connection met. */
function reasonOf(error: unknown): Error | undefined {
  const reason = error instanceof RedisUnavailableError ? error.cause : error;
  return reason instanceof Error ? reason : undefined;
}

/**
 * The setting at fault when Redis refuses a connection in a way no wait will change: credentials it
 * does not accept (`NOAUTH`, `WRONGPASS`), a user without the rights to PING (`NOPERM`) or a database
 * number it does not have. Names `REDIS_URL`, its password masked. Undefined for any other error.
 */
export function redisRefusal(error: unknown, url: string): ConfigError | undefined {
  const reason = reasonOf(error);
  if (!reason || !REFUSAL.test(reason.message)) return undefined;
  const message = `Redis at ${maskRedisUrl(url)} refused the connection (${reason.message}): check the user, password and database number in it`;
  return new ConfigError([{ env: 'REDIS_URL', message }]);
}

/**
 * Whether Redis answered but cannot serve yet: it is loading its dataset (`LOADING`, for as long as a
 * large append-only file takes), running a script past its time limit (`BUSY`), or is a replica that
 * lost its master (`MASTERDOWN`). Services wait for such a Redis as for one that is not up.
 */
export function isRedisNotReady(error: unknown): boolean {
  return NOT_YET.test(reasonOf(error)?.message ?? '');
}

/**
 * Waits at start-up until Redis answers, then until `client` is ready. Redis that does not answer
 * yet (not up, a name that does not resolve yet, `LOADING`) is tried again with backoff, 0.5 s
 * doubling to 5 s, each try logged (see {@link waitAtStart}), for up to `timeoutMs` in all.
 *
 * @throws ConfigError when Redis refuses the connection ({@link redisRefusal}), at once
 * @throws RedisUnavailableError when Redis did not answer, or could not serve yet, within `timeoutMs`, saying why
 * @throws the signal's reason when `signal` is aborted during the wait
 */
export async function waitForRedisAtStart(client: Redis, url: string, options: RedisStartOptions): Promise<void> {
  const redis = {
    name: 'Redis',
    isUnavailable: (error: unknown) => redisRefusal(error, url) === undefined,
    firstDelayMs: FIRST_DELAY_MS,
    maxDelayMs: MAX_DELAY_MS,
    giveUpAfterMs: options.timeoutMs,
  };
  const started = Date.now();
  try {
    await waitAtStart(redis, 'connection', () => pingRedis(url, TRY_TIMEOUT_MS), options);
  } catch (error) {
    if (options.signal?.aborted) throw error;
    const refusal = redisRefusal(error, url);
    if (refusal) throw refusal;
    const detail = error instanceof RedisUnavailableError ? error.detail : String(error);
    const waited = `${Math.round((Date.now() - started) / 1000)} s`;
    throw new RedisUnavailableError(maskRedisUrl(url), `${detail}; gave up after ${waited}, REDIS_STARTUP_TIMEOUT_MS`, { cause: error, notReady: isRedisNotReady(error) });
  }
  await waitForRedis(client, url, CONNECTION_READY_MS);
}
