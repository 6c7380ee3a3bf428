import { Type } from '@sinclair/typebox';

/**
 * Config fragments shared by every service. A service composes them into its own schema:
 *
 * ```ts
 * const ApiConfigSchema = Type.Object({ ...redisConfigFields, ...s3ConfigFields, ...logConfigFields, port: ... });
 * ```
 *
 * Every field carries its env name (`env`), a description and, where sensible, a default.
 */

/** The longest delay Node's timers honour (2^31 - 1 ms): a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A duration in milliseconds that a timer or a lock waits for, bounded by what Node's timers honour. */
export function timerMsField(field: { env: string; default: number; minimum: number; description: string }) {
  return Type.Integer({ ...field, maximum: MAX_TIMER_MS });
}

/** Redis connection used by BullMQ queues and workers. */
export const redisConfigFields = {
  /** Redis connection URL. */
  redisUrl: Type.String({
    env: 'REDIS_URL',
    default: 'redis://127.0.0.1:6379',
    pattern: '^rediss?://',
    description: 'Redis URL for queues (redis:// or rediss://).',
  }),
  /**
   * How long a service waits at start-up for a Redis that does not answer yet (not up, its name not
   * resolving yet, loading its dataset), trying again with backoff, before it exits. Credentials
   * Redis refuses stop it at once.
   */
  redisStartupTimeoutMs: timerMsField({
    env: 'REDIS_STARTUP_TIMEOUT_MS',
    default: 120_000,
    minimum: 0,
    description:
      'How long the service waits at start-up for Redis to answer (not up yet, its name not resolving yet, LOADING its dataset), trying again 0.5 s doubling to 5 s apart, before it exits 1; credentials Redis refuses (NOAUTH, WRONGPASS) exit 78 at once (0: one try).',
  }),
};

/** Queue key prefix, so several deployments or tests can share one Redis. */
export const queueConfigFields = {
  /** Prefix of every BullMQ key in Redis. */
  queuePrefix: Type.String({
    env: 'QUEUE_PREFIX',
    default: 'btd',
    pattern: '^[A-Za-z0-9_-]+$',
    description: 'Prefix of all queue keys in Redis (letters, digits, - and _).',
  }),
};

/** S3-compatible object storage holding originals, results and overlays. */
export const s3ConfigFields = {
  /** S3 endpoint; unset means AWS S3 itself (or the embedded server under `npm start`). */
  s3Endpoint: Type.Optional(
    Type.String({
      env: 'S3_ENDPOINT',
      pattern: '^https?://',
      description: 'S3-compatible endpoint URL (MinIO, s3rver). Unset: AWS S3, or the embedded s3rver under npm start.',
    }),
  ),
  /** Bucket for originals, results and overlays. */
  s3Bucket: Type.String({
    env: 'S3_BUCKET',
    default: 'btd',
    minLength: 3,
    description: 'Bucket holding originals, results and overlays; created at start if missing.',
  }),
  /** Region sent to the S3 client. */
  s3Region: Type.String({ env: 'S3_REGION', default: 'us-east-1', description: 'S3 region.' }),
  /** Access key id; unset uses the AWS SDK's default credential chain. */
  s3AccessKeyId: Type.Optional(
    Type.String({ env: 'S3_ACCESS_KEY_ID', description: 'S3 access key id (unset: AWS default credential chain).' }),
  ),
  /** Secret access key; unset uses the AWS SDK's default credential chain. */
  s3SecretAccessKey: Type.Optional(
    Type.String({ env: 'S3_SECRET_ACCESS_KEY', secret: true, description: 'S3 secret access key.' }),
  ),
  /** How long an S3 request may wait to connect, or wait in silence for data, before it fails. */
  s3TimeoutMs: timerMsField({
    env: 'S3_TIMEOUT_MS',
    default: 30_000,
    minimum: 100,
    description: 'An S3 request fails when its connection takes longer, or its socket stays silent this long (its job is then retried).',
  }),
  /** Path-style addressing, which MinIO and s3rver need. */
  s3ForcePathStyle: Type.Boolean({
    env: 'S3_FORCE_PATH_STYLE',
    default: true,
    description: 'Use path-style bucket URLs (needed by MinIO and s3rver).',
  }),
};

/** Logging. */
export const logConfigFields = {
  /** Minimum pino log level. */
  logLevel: Type.Union(
    [
      Type.Literal('fatal'),
      Type.Literal('error'),
      Type.Literal('warn'),
      Type.Literal('info'),
      Type.Literal('debug'),
      Type.Literal('trace'),
      Type.Literal('silent'),
    ],
    { env: 'LOG_LEVEL', default: 'info', description: 'Log level: fatal, error, warn, info, debug, trace or silent.' },
  ),
};
