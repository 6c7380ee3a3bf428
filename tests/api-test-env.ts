import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ObjectStore, Redis, createLogger, type Logger } from '@btd/shared';
import { loadApiConfig, startApi, type ApiConfig, type RunningApi } from '@btd/api';
import { TEST_REDIS_URL, deleteKeysWithPrefix, keysWithPrefix, uniquePrefix, type TestS3 } from './helpers/index.js';

/** Clients every test API knows; `ops` is an admin. */
export const CLIENTS = ['alice', 'bob', 'ops'] as const;
export type TestClient = (typeof CLIENTS)[number];

/** One test's world: an API on a free port with its own queue prefix, bucket, keys and data folder. */
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
  auth(client: TestClient): { authorization: string };
  /** Every Redis key under the test's prefix. */
  redisKeys(): Promise<string[]>;
  /** Every object in the test's bucket. */
  objectKeys(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Starts the API in process on the test's s3rver, with a fresh prefix, bucket and keys; it logs to
 * `logger` when given (a test that reads the log), else as `TEST_LOG_LEVEL` says (silent by default).
 */
export async function startApiEnv(s3: TestS3, overrides: Record<string, string> = {}, logger?: Logger): Promise<ApiTestEnv> {
  const prefix = uniquePrefix();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'btd-api-'));
  const keys = Object.fromEntries(CLIENTS.map((client) => [client, randomBytes(18).toString('base64url')])) as Record<TestClient, string>;
  const webhookSecret = randomBytes(24).toString('hex');
  const config = loadApiConfig({
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: prefix,
    ...s3.env(s3.bucketOptions()),
    API_KEYS: CLIENTS.map((client) => `${client}:${keys[client]}`).join(','),
    ADMIN_CLIENTS: 'ops',
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    WEBHOOK_SECRET: webhookSecret,
    // The tests' webhook receivers and PACS listen on loopback, which is not a public address.
    WEBHOOK_ALLOWED_NETWORKS: '127.0.0.1/32',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...overrides,
  });
  const api = await startApi(config, logger ?? createLogger({ name: 'api-test', level: config.logLevel, pretty: false }));
  const store = new ObjectStore(config);
  const redis = new Redis(config.redisUrl);
  redis.on('error', () => {}); // outage tests stop Redis on purpose
  const close = async (): Promise<void> => {
    await api.close();
    await deleteKeysWithPrefix(redis, prefix);
    await store.deletePrefix('').catch(() => 0);
    store.close();
    redis.disconnect();
    await rm(dataDir, { recursive: true, force: true });
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
    auth: (client) => ({ authorization: `Bearer ${keys[client]}` }),
    redisKeys: () => keysWithPrefix(redis, prefix),
    objectKeys: () => store.listKeys(''),
    close,
  };
}
