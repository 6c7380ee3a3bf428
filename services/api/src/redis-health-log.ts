import type { Logger, Redis } from '@btd/shared';

/**
 * Logs a Redis connection's outages once each (lost, then restored) instead of one line per
 * reconnect attempt, and keeps ioredis from printing "Unhandled error event" to stderr.
 */
export function logConnectionHealth(connection: Redis, name: string, logger: Logger): void {
  let down = false;
  connection.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.error({ err: error, connection: name }, 'Redis connection lost; reconnecting');
  });
  connection.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info({ connection: name }, 'Redis connection restored');
  });
}
