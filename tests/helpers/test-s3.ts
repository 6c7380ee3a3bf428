import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EMBEDDED_S3_CREDENTIALS, ObjectStore, startEmbeddedS3, type EmbeddedS3, type ObjectStoreOptions } from '@btd/shared';

/** An s3rver on a free port, storing under a temporary directory. */
export interface TestS3 {
  readonly endpoint: string;
  /** Stops the server (objects stay on disk), to test behaviour during an S3 outage. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory after {@link stop}. */
  restart(): Promise<void>;
  /** Store options for a new, uniquely named bucket (not yet created). */
  bucketOptions(): ObjectStoreOptions;
  /** A store on a new bucket, created; it is emptied and closed by `close()`. */
  createBucket(): Promise<ObjectStore>;
  /** Environment variables pointing a service at a bucket of this server. */
  env(options: ObjectStoreOptions): Record<string, string>;
  close(): Promise<void>;
}

/** Starts an s3rver for one test file; call `close()` in `afterAll`. */
export async function startTestS3(): Promise<TestS3> {
  const dir = await mkdtemp(path.join(tmpdir(), 'btd-s3-'));
  let s3: EmbeddedS3 = await startEmbeddedS3({ directory: dir });
  const { endpoint, port } = s3;
  const stores: ObjectStore[] = [];
  const bucketOptions = (): ObjectStoreOptions => ({
    s3Endpoint: endpoint,
    s3Bucket: `t-${randomUUID()}`,
    s3Region: 'us-east-1',
    s3AccessKeyId: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    s3SecretAccessKey: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    s3ForcePathStyle: true,
  });
  return {
    endpoint,
    stop: () => s3.close(),
    async restart() {
      s3 = await startEmbeddedS3({ directory: dir, port });
    },
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
      S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    }),
    async close() {
      for (const store of stores) {
        await store.deletePrefix('').catch(() => 0);
        store.close();
      }
      await s3.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
