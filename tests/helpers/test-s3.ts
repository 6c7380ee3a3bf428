import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, inject } from 'vitest';
import { EMBEDDED_S3_CREDENTIALS, ObjectStore, startEmbeddedS3, type EmbeddedS3, type ObjectStoreOptions } from '@btd/shared';
import { startTestMinio } from './test-minio.js';

/** An S3 server for one test file: an s3rver, or a MinIO container with `TEST_CONTAINERS=true`. */
export interface TestS3 {
  readonly endpoint: string;
  /** Stops the server (objects are kept), to test behaviour during an S3 outage. */
  stop(): Promise<void>;
  /** Starts it again on the same port, with the same objects, after {@link stop}. */
  restart(): Promise<void>;
  /** Store options for a new, uniquely named bucket (not yet created). */
  bucketOptions(): ObjectStoreOptions;
  /** A store on a new bucket, created; it is emptied and closed by `close()`. */
  createBucket(): Promise<ObjectStore>;
  /** Environment variables pointing a service at a bucket of this server. */
  env(options: ObjectStoreOptions): Record<string, string>;
  close(): Promise<void>;
}

/** What differs between the servers a {@link TestS3} runs on. */
export interface TestS3Server {
  readonly endpoint: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the server for good and removes its objects. */
  remove(): Promise<void>;
}

/** Starts the test file's S3 server; call `close()` in `afterAll`. */
export async function startTestS3(): Promise<TestS3> {
  return testS3On(inject('testContainers') ? await startTestMinio() : await startS3rver());
}

/** The test file's S3 server with one bucket, started before its tests and closed after them. */
export interface TestBucket {
  readonly s3: TestS3;
  readonly store: ObjectStore;
}

/** Registers the hooks that start the test file's S3 server and bucket; the getters work inside tests. */
export function useTestBucket(): TestBucket {
  let s3: TestS3 | undefined;
  let store: ObjectStore | undefined;
  beforeAll(async () => {
    s3 = await startTestS3();
    store = await s3.createBucket();
  });
  afterAll(async () => {
    await s3?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the test bucket is only available inside a test');
    return value;
  };
  return {
    get s3() {
      return started(s3);
    },
    get store() {
      return started(store);
    },
  };
}

async function startS3rver(): Promise<TestS3Server> {
  const dir = await mkdtemp(path.join(tmpdir(), 'btd-s3-'));
  let s3: EmbeddedS3 = await startEmbeddedS3({ directory: dir });
  const { endpoint, port } = s3;
  return {
    endpoint,
    credentials: EMBEDDED_S3_CREDENTIALS,
    stop: () => s3.close(),
    async restart() {
      s3 = await startEmbeddedS3({ directory: dir, port });
    },
    async remove() {
      await s3.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function testS3On(server: TestS3Server): TestS3 {
  const { endpoint, credentials } = server;
  const stores: ObjectStore[] = [];
  const bucketOptions = (): ObjectStoreOptions => ({
    s3Endpoint: endpoint,
    s3Bucket: `t-${randomUUID()}`,
    s3Region: 'us-east-1',
    s3AccessKeyId: credentials.accessKeyId,
    s3SecretAccessKey: credentials.secretAccessKey,
    s3ForcePathStyle: true,
  });
  return {
    endpoint,
    stop: () => server.stop(),
    restart: () => server.restart(),
    bucketOptions,
    async createBucket() {
      const store = new ObjectStore(bucketOptions());
      await store.ensureBucket();
      stores.push(store);
      return store;
    },
    env: (options) => ({
      S3_ENDPOINT: endpoint,
      S3_BUCKET: options.s3Bucket,
      S3_REGION: options.s3Region,
      S3_ACCESS_KEY_ID: credentials.accessKeyId,
      S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    }),
    async close() {
      for (const store of stores) {
        await store.deletePrefix('').catch(() => 0);
        store.close();
      }
      await server.remove();
    },
  };
}
