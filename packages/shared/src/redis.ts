import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { RedisUnavailableError } from './redis-unavailable.error.js';

export { Redis } from 'ioredis';

/** Masks the password of a Redis URL so it can be logged or shown in an error. */
export function maskRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable redis url>';
  }
}

/** Reconnect quickly at first, then at most every 2 s, forever: Redis restarts should heal. */
function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** times, 2000);
}

/**
 * Connection for BullMQ `Worker`s and `QueueEvents`. BullMQ requires `maxRetriesPerRequest:
 * null` on blocking connections so a Redis restart pauses the worker instead of failing jobs.
 */
export function createWorkerConnection(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
    ...options,
  });
}

/**
 * Connection for producers behind HTTP (`Queue.add` in a request handler). Without the
 * offline queue a command fails at once while Redis is down, so the handler can answer 503
 * instead of hanging until the client gives up.
 */
export function createProducerConnection(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: reconnectDelay,
    ...options,
  });
}

/**
 * Waits until a connection is ready, or throws {@link RedisUnavailableError} after `timeoutMs`.
 * Use at start-up so a missing Redis produces one clear message instead of a stream of
 * reconnect errors.
 */
export async function waitForRedis(client: Redis, url: string, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return;
  let firstError: unknown;
  // The first error says why (ECONNREFUSED, ENOTFOUND, NOAUTH); later ones only repeat it.
  const onError = (error: unknown): void => {
    firstError ??= error;
  };
  let onReady = (): void => {};
  let onEnd = (): void => {};
  let timer: NodeJS.Timeout | undefined;
  client.on('error', onError);
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (fallback: string): void => {
        const detail = firstError instanceof Error ? firstError.message : fallback;
        reject(new RedisUnavailableError(maskRedisUrl(url), detail, { cause: firstError }));
      };
      timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
      onReady = resolve;
      // A client that gave up reconnecting will never become ready: fail now, not at the timeout.
      onEnd = () => fail('connection closed');
      client.once('ready', onReady);
      client.once('end', onEnd);
      if (client.status === 'wait') client.connect().catch(onError);
    });
  } finally {
    clearTimeout(timer);
    client.off('error', onError).off('ready', onReady).off('end', onEnd);
  }
}

/**
 * Opens a short-lived connection, sends PING and closes it. Throws {@link RedisUnavailableError}
 * when Redis does not answer PONG within `timeoutMs`, its `cause` the error that says why: a refused
 * connection, refused credentials, or a Redis still loading its dataset (`LOADING`), which the
 * connection does not wait out as a service's own connections do.
 */
export async function pingRedis(url: string, timeoutMs = 2000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  client.on('error', () => {});
  try {
    await waitForRedis(client, url, timeoutMs);
    await client.ping().catch((error: unknown) => {
      throw new RedisUnavailableError(maskRedisUrl(url), error instanceof Error ? error.message : String(error), { cause: error });
    });
  } finally {
    client.disconnect();
  }
}

/** Closes a connection gracefully, falling back to disconnect; safe to call twice. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/**
 * Logs a connection's outages once each (lost, then restored) instead of one line per
 * reconnect attempt, and keeps ioredis from printing "Unhandled error event" to stderr.
 * A connection that never was ready is not said to be lost: it is still connecting.
 */
export function logConnectionHealth(connection: Redis, name: string, logger: Logger): void {
  let down = false;
  let wasReady = connection.status === 'ready';
  connection.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.error({ err: error, connection: name }, wasReady ? 'Redis connection lost; reconnecting' : 'Redis not reachable; connecting');
  });
  connection.on('ready', () => {
    const first = !wasReady;
    wasReady = true;
    if (!down) return;
    down = false;
    logger.info({ connection: name }, first ? 'Redis connection established' : 'Redis connection restored');
  });
}
