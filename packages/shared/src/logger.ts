import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Service name, logged as `name` on every line. */
  name: string;
  /** Minimum level (default `info`). */
  level?: string;
  /**
   * Human-readable output through pino-pretty. Defaults to whether stdout is a terminal, so
   * containers and log shippers get one JSON object per line.
   */
  pretty?: boolean;
}

/**
 * Paths whose values never reach the logs: credentials in request headers, the arguments of
 * the Redis command that an ioredis error carries (AUTH and HELLO carry the password of
 * REDIS_URL, other commands job data), and the object fields that could carry image bytes if
 * someone logged a whole payload by mistake.
 */
export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  '*.headers.authorization',
  'apiKey',
  '*.apiKey',
  'secretAccessKey',
  '*.secretAccessKey',
  'err.command.args',
];

/**
 * Creates the root pino logger of a service. Use `logger.child({ jobId, queue, attempt,
 * modelVersion })` for per-job context.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  const base: LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  if (!pretty) return pino(base);
  return pino({
    ...base,
    transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
  });
}
