import { Type, type Static } from '@sinclair/typebox';
import { MAX_INPUT_PIXELS } from '@btd/model';
import { ConfigError, S3_OUTAGE_DEFAULTS, type ConfigIssue, loadConfig, logConfigFields, queueConfigFields, redisConfigFields, s3ConfigFields, timerMsField, type Env } from '@btd/shared';
import { invalidNetworks } from './webhooks/callback-addresses.js';

/**
 * Every setting of the API service. Each field names its environment variable (`env`), says what
 * it does and has a default where one is safe. `.env.example` is generated from this list.
 */
export const ApiConfigSchema = Type.Object({
  ...redisConfigFields,
  ...queueConfigFields,
  ...s3ConfigFields,
  ...logConfigFields,
  /** Interface the HTTP server binds to. */
  host: Type.String({
    env: 'HOST',
    default: '0.0.0.0',
    description: 'Interface to listen on (0.0.0.0 for containers; 127.0.0.1 keeps it on this machine).',
  }),
  /** TCP port of the HTTP server. */
  port: Type.Integer({ env: 'PORT', default: 3000, minimum: 0, maximum: 65535, description: 'HTTP port (0 picks a free one).' }),
  /** How long a client may take to send a whole request; Fastify's default is no limit at all. */
  httpRequestTimeoutMs: timerMsField({
    env: 'HTTP_REQUEST_TIMEOUT_MS',
    default: 300_000,
    minimum: 1000,
    description:
      'How long a client may take to send a whole request, headers and body, in milliseconds counted from its first byte; past it the connection is answered 408 and closed, so that clients that send slowly or stop halfway (Slowloris) cannot hold connections for good. Long enough for MAX_SUBMISSION_BYTES over the slowest link that uploads.',
  }),
  /** Base URL clients reach the API at, used for absolute links in webhook bodies and STOW-RS answers. */
  publicUrl: Type.Optional(
    Type.String({ env: 'PUBLIC_URL', pattern: '^https?://', description: 'External base URL, e.g. https://btd.example.org (links in webhooks and STOW-RS answers).' }),
  ),
  /** Inline API keys. */
  apiKeys: Type.Optional(
    Type.String({ env: 'API_KEYS', secret: true, description: 'API keys as client:key pairs separated by commas (keys of 16+ characters).' }),
  ),
  /** File with API keys, one `client:key` per line. */
  apiKeysFile: Type.Optional(
    Type.String({ env: 'API_KEYS_FILE', description: 'File with one client:key per line (# comments allowed).' }),
  ),
  /** Clients allowed on admin routes. */
  adminClients: Type.String({
    env: 'ADMIN_CLIENTS',
    default: '',
    pattern: '^[A-Za-z0-9_.,-]*$',
    description: 'Comma-separated client ids allowed on admin routes (e.g. ops).',
  }),
  /** Local state: the generated key and webhook secret when none are configured. */
  dataDir: Type.String({
    env: 'DATA_DIR',
    default: 'data',
    description: 'Folder for local state: the generated local-api-key and webhook-secret.',
  }),
  /** Largest accepted image file. */
  maxUploadBytes: Type.Integer({
    env: 'MAX_UPLOAD_BYTES',
    default: 20 * 1024 * 1024,
    minimum: 1024,
    description: 'Largest accepted image file in bytes (default 20 MiB).',
  }),
  /** Most bytes of files in one request, which the API holds in memory until all are checked. */
  maxSubmissionBytes: Type.Integer({
    env: 'MAX_SUBMISSION_BYTES',
    default: 256 * 1024 * 1024,
    minimum: 1024,
    description:
      "Most bytes of image files in one request (a study's files, a batch chunk's, or a STOW-RS request's instances), all held in memory until every one is checked; at least MAX_UPLOAD_BYTES (default 256 MiB).",
  }),
  /**
   * Most bytes of uploads held in memory at once, over all requests of this process: each request
   * stays within MAX_SUBMISSION_BYTES, but many in parallel could together hold more memory than the
   * process has. Sized for a container of 2 GiB or more: four requests of the largest size.
   */
  maxInflightUploadBytes: Type.Integer({
    env: 'MAX_INFLIGHT_UPLOAD_BYTES',
    default: 1024 * 1024 * 1024,
    minimum: 1024,
    description:
      'Most bytes of uploads this API process holds in memory at once, over all requests; a request that would go past it is answered 503 upload_capacity_exceeded with Retry-After; at least MAX_SUBMISSION_BYTES (default 1 GiB).',
  }),
  /**
   * Most bytes that decoding uploads holds at once, over all requests of this process: intake decodes
   * every image to prove it whole, and a file of a few hundred kB may decode to hundreds of MB. Apart
   * from MAX_INFLIGHT_UPLOAD_BYTES, which the bytes of the requests waiting to decode hold.
   */
  maxInflightDecodeBytes: Type.Integer({
    env: 'MAX_INFLIGHT_DECODE_BYTES',
    default: 1024 * 1024 * 1024,
    minimum: 1024,
    description:
      "Most bytes that decoding uploaded images holds at once in this API process, each image's taken from its header before it is decoded (width × height × the bytes its decoded samples and grey levels take per pixel: 16 for a DICOM frame, frames one at a time; a deflated DICOM file's inflation, 128 MiB at most, before it is parsed); an image that does not fit waits for others to be decoded, and one that alone needs more is refused 422 image_too_large (default 1 GiB: one DICOM image of 64 million pixels).",
  }),
  /**
   * Largest accepted width × height, against decompression bombs. No more than the models decode
   * (MAX_INPUT_PIXELS): a larger image would be accepted here and fail on the worker.
   */
  maxImagePixels: Type.Integer({
    env: 'MAX_IMAGE_PIXELS',
    default: 50_000_000,
    minimum: 1,
    maximum: MAX_INPUT_PIXELS,
    description: `Largest accepted width × height of an image (decompression-bomb guard); at most ${MAX_INPUT_PIXELS}, the most the workers decode.`,
  }),
  /** Threads that read uploaded DICOM files: header and every frame. */
  intakeDecodeThreads: Type.Optional(
    Type.Integer({
      env: 'INTAKE_DECODE_THREADS',
      minimum: 0,
      maximum: 32,
      description: 'Threads that read uploaded DICOM files off the event loop, each once per request: header parsed (a deflated data set inflated) and every frame decoded to prove it whole (unset: one per core, at most 4; 0: on the event loop).',
    }),
  ),
  /** Most images in one study. */
  maxImagesPerStudy: Type.Integer({
    env: 'MAX_IMAGES_PER_STUDY',
    default: 64,
    minimum: 1,
    maximum: 1000,
    description: 'Most image files accepted in one study submission.',
  }),
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlSeconds: Type.Integer({
    env: 'IDEMPOTENCY_TTL_SECONDS',
    default: 24 * 3600,
    minimum: 60,
    description: 'How long a submission is remembered under its Idempotency-Key, in seconds.',
  }),
  /** Days a finished study is kept before the retention sweep erases it; 0 keeps every study for ever. */
  studyRetentionDays: Type.Integer({
    env: 'STUDY_RETENTION_DAYS',
    default: 0,
    minimum: 0,
    maximum: 36_500,
    description:
      'Days after it finished (done or failed) that a study is erased by the retention sweep, objects and records, as DELETE /v1/studies/:id does; batches whose studies are all erased go too (0: studies are kept for ever).',
  }),
  /** Secret that each client's webhook signing secret is derived from. */
  webhookSecret: Type.Optional(
    Type.String({
      env: 'WEBHOOK_SECRET',
      secret: true,
      minLength: 16,
      description: "Secret each client's webhook signing secret is derived from (GET /v1/webhooks/secret gives a client its own; unset: generated once into DATA_DIR/webhook-secret).",
    }),
  ),
  /** A PACS's DICOMweb endpoint that the heatmap captures of finished studies are stored to. */
  pacsStowUrl: Type.Optional(
    Type.String({
      env: 'PACS_STOW_URL',
      pattern: '^https?://',
      description:
        "DICOMweb base URL of a PACS, e.g. https://pacs.example/dicom-web: each finished study's heatmap captures of DICOM images are stored there by STOW-RS (unset: none are).",
    }),
  ),
  /** Authorization header sent with those STOW-RS requests. */
  pacsStowAuthorization: Type.Optional(
    Type.String({ env: 'PACS_STOW_AUTHORIZATION', secret: true, minLength: 1, description: 'Authorization header value for PACS_STOW_URL, e.g. "Basic …" or "Bearer …".' }),
  ),
  /** Per-attempt timeout of a STOW-RS request to the PACS. */
  pacsStowTimeoutMs: timerMsField({
    env: 'PACS_STOW_TIMEOUT_MS',
    default: 120_000,
    minimum: 100,
    description: "Timeout of one attempt to store a study's captures in the PACS (PACS_STOW_URL), in milliseconds: a PACS may take far longer to store a study than a webhook receiver to answer.",
  }),
  /**
   * An export builds its captures from the originals and overlays in S3 at each attempt; an S3
   * outage is nothing wrong with the export, so it waits for S3 without spending attempts, for this
   * long per outage; past it the export spends them and fails as for any other error.
   */
  pacsExportS3OutageBudgetMs: timerMsField({
    env: 'PACS_EXPORT_S3_OUTAGE_BUDGET_MS',
    default: S3_OUTAGE_DEFAULTS.budgetMs,
    minimum: 0,
    description: 'How long a PACS export waits out an S3 outage (unreachable, time-outs, 5xx, throttling) without spending its attempts, in milliseconds; then it fails as for any error (0: no waiting).',
  }),
  /** Non-public networks that clients' webhooks may reach. */
  webhookAllowedNetworks: Type.String({
    env: 'WEBHOOK_ALLOWED_NETWORKS',
    default: '',
    description:
      "Comma-separated addresses and CIDR ranges of non-public networks (loopback, private, link-local, …) that clients' callbackUrl webhooks may reach, e.g. 10.20.0.0/16 for a hospital's integration engine, or 127.0.0.1/32 for a receiver on this machine; public addresses are always allowed (empty: public addresses only). A callbackUrl whose host is another non-public address is refused at submission (400 invalid_field).",
  }),
  /**
   * A webhook's body carries the study's DICOM identifiers (study, series and SOP instance UIDs,
   * accession number), which must not cross a network in clear; loopback receivers are exempt, their
   * requests never leave the machine.
   */
  webhookRequireHttps: Type.Boolean({
    env: 'WEBHOOK_REQUIRE_HTTPS',
    default: true,
    description:
      "Refuse (400 invalid_field) a callbackUrl that is not https, since webhooks carry DICOM identifiers, and send no webhook to one stored while this was off (its delivery fails at once); http stays allowed to a loopback address (127.0.0.1, [::1]) on the API's own machine. false: http allowed everywhere.",
  }),
  /** Per-attempt timeout of a webhook POST. */
  webhookTimeoutMs: timerMsField({
    env: 'WEBHOOK_TIMEOUT_MS',
    default: 10_000,
    minimum: 100,
    description: 'Timeout of one webhook delivery attempt in milliseconds.',
  }),
  /** Parallel result messages applied by this process. */
  resultsConcurrency: Type.Integer({
    env: 'RESULTS_CONCURRENCY',
    default: 1,
    minimum: 1,
    description: 'Result messages applied in parallel by this API process. Applying a result takes a few Redis round trips and no model work, so one at a time keeps up with many workers; each extra slot adds idle polls of Redis while results trickle in.',
  }),
  /** Parallel webhook deliveries by this process. */
  webhookConcurrency: Type.Integer({
    env: 'WEBHOOK_CONCURRENCY',
    default: 4,
    minimum: 1,
    description: 'Webhook deliveries sent in parallel by this API process.',
  }),
  /**
   * How long a result or webhook job's lock lasts unless its holder renews it, which BullMQ does every
   * half of it. An API process that dies holding a job renews it no more, so the job is taken up by
   * another once the lock has lapsed; a lock too short lapses on a live holder whose event loop or
   * Redis is held up for half of it, and its job is then run twice (a webhook sent twice).
   */
  consumerLockDurationMs: timerMsField({
    env: 'CONSUMER_LOCK_DURATION_MS',
    default: 30_000,
    minimum: 5000,
    description:
      'Lock of a result or webhook job this API process holds, in milliseconds, renewed every half of it; a job whose API process died is taken up by another once its lock lapses (at least 5000, so that a held-up event loop or Redis does not let a live job be run twice).',
  }),
  /** How often the result and webhook consumers look for jobs whose lock has lapsed. */
  consumerStalledIntervalMs: timerMsField({
    env: 'CONSUMER_STALLED_INTERVAL_MS',
    default: 30_000,
    minimum: 500,
    description:
      'How often, in milliseconds, the API looks for result and webhook jobs whose API process died (their lock lapsed) and puts them back in their queue; one check per queue and interval over all API processes.',
  }),
  /** Hard limit on a graceful shutdown. */
  shutdownTimeoutMs: timerMsField({
    env: 'SHUTDOWN_TIMEOUT_MS',
    default: 20_000,
    minimum: 100,
    description: 'Hard limit for a graceful shutdown in milliseconds; after it the process exits.',
  }),
});

/** The API's validated, frozen configuration. */
export type ApiConfig = Readonly<Static<typeof ApiConfigSchema>>;

/**
 * Reads and validates the API configuration.
 *
 * @throws ConfigError listing every invalid setting at once
 */
export function loadApiConfig(env: Env = process.env): ApiConfig {
  const config = loadConfig(ApiConfigSchema, env);
  const issues: ConfigIssue[] = [];
  const invalid = invalidNetworks(config.webhookAllowedNetworks);
  if (invalid.length > 0) issues.push({ env: 'WEBHOOK_ALLOWED_NETWORKS', message: `not an address or CIDR range: ${invalid.join(', ')}` });
  if (config.maxSubmissionBytes < config.maxUploadBytes) {
    issues.push({ env: 'MAX_SUBMISSION_BYTES', message: `is ${config.maxSubmissionBytes}, less than MAX_UPLOAD_BYTES (${config.maxUploadBytes}): no file of that size could be sent` });
  }
  if (config.maxInflightUploadBytes < config.maxSubmissionBytes) {
    issues.push({
      env: 'MAX_INFLIGHT_UPLOAD_BYTES',
      message: `is ${config.maxInflightUploadBytes}, less than MAX_SUBMISSION_BYTES (${config.maxSubmissionBytes}): a request of that size would be refused for good`,
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}
