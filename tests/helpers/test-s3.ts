import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EMBEDDED_S3_CREDENTIALS, ObjectStore, startEmbeddedS3, type EmbeddedS3, type ObjectStoreOptions } from '@btd/shared';

/** An s3rver on a free port, storing under a temporary directory. */
export interface TestS3 {
  readonly s3: EmbeddedS3;
  readonly endpoint: string;
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
  const s3 = await startEmbeddedS3({ directory: dir });
  const stores: ObjectStore[] = [];
  const bucketOptions = (): ObjectStoreOptions => ({
    s3Endpoint: s3.endpoint,
    s3Bucket: `t-${randomUUID()}`,
    s3Region: 'us-east-1',
    s3AccessKeyId: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    s3SecretAccessKey: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    s3ForcePathStyle: true,
  });
  return {
    s3,
    endpoint: s3.endpoint,
    bucketOptions,
    async createBucket() {
      const store = new ObjectStore(bucketOptions());
      await store.ensureBucket();
      stores.push(store);
      return store;
    },
    env: (options) => ({
      S3_ENDPOINT: s3.endpoint,
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
