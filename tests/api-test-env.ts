import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EMBEDDED_S3_CREDENTIALS, ObjectStore, Redis, createLogger, startEmbeddedS3, type EmbeddedS3 } from '@btd/shared';
import { loadApiConfig, startApi, type ApiConfig, type RunningApi } from '@btd/api';

/** Redis the tests run against (the machine's local one unless REDIS_URL says otherwise). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Clients every test API knows; `ops` is an admin. */
export const CLIENTS = ['alice', 'bob', 'ops'] as const;
export type TestClient = (typeof CLIENTS)[number];

/** One test's world: an API on a free port with its own queue prefix, bucket and keys. */
export interface ApiTestEnv {
  readonly api: RunningApi;
  readonly url: string;
  readonly config: ApiConfig;
  readonly prefix: string;
  /** Inspection clients, separate from the API's own. */
  readonly store: ObjectStore;
  readonly redis: Redis;
  readonly keys: Readonly<Record<TestClient, string>>;
  readonly webhookSecret: string;
  /** Environment the API was configured from (for workers sharing its Redis and bucket). */
  readonly env: Readonly<Record<string, string>>;
  auth(client: TestClient): { authorization: string };
  /** Every Redis key and object the test's API created. */
  redisKeys(): Promise<string[]>;
  objectKeys(): Promise<string[]>;
  close(): Promise<void>;
}

/** Starts an s3rver (one per call) for a test file. */
export async function startTestS3(): Promise<{ s3: EmbeddedS3; dir: string; close(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'btd-api-'));
  const s3 = await startEmbeddedS3({ directory: path.join(dir, 's3') });
  return { s3, dir, close: async () => { await s3.close(); await rm(dir, { recursive: true, force: true }); } };
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

/** Starts the API in process against the s3rver, with a fresh prefix and bucket. */
export async function startApiEnv(s3: EmbeddedS3, dataDir: string, overrides: Record<string, string> = {}): Promise<ApiTestEnv> {
  const prefix = `test-${randomUUID()}`;
  const keys = Object.fromEntries(CLIENTS.map((client) => [client, randomBytes(18).toString('base64url')])) as Record<TestClient, string>;
  const webhookSecret = randomBytes(24).toString('hex');
  const env: Record<string, string> = {
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: `b-${randomUUID()}`,
    S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    API_KEYS: CLIENTS.map((client) => `${client}:${keys[client]}`).join(','),
    ADMIN_CLIENTS: 'ops',
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    WEBHOOK_SECRET: webhookSecret,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...overrides,
  };
  const config = loadApiConfig(env);
  const logger = createLogger({ name: 'api-test', level: config.logLevel, pretty: false });
  const api = await startApi(config, logger);
  const store = new ObjectStore(config);
  const redis = new Redis(config.redisUrl);
  const objectKeys = () => store.listKeys('');
  const close = async (): Promise<void> => {
    await api.close();
    const leftovers = await scanKeys(redis, `${prefix}:*`);
    if (leftovers.length > 0) await redis.del(...leftovers);
    await store.deletePrefix('').catch(() => 0);
    store.close();
    redis.disconnect();
  };
  return {
    api,
    url: api.url,
    config,
    prefix,
    store,
    redis,
    keys,
    webhookSecret,
    env,
    auth: (client) => ({ authorization: `Bearer ${keys[client]}` }),
    redisKeys: () => scanKeys(redis, `${prefix}:*`),
    objectKeys,
    close,
  };
}
