import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { initBackend } from '@btd/model';
import {
  Redis,
  closeRedis,
  createInferenceQueue,
  createLogger,
  createProducerConnection,
  createResultsQueue,
  createWorkerConnection,
  enqueueInference,
  originalKey,
  resultJobId,
  type InferenceQueue,
  type ObjectStore,
  type ObjectStoreOptions,
  type ResultMessage,
  type ResultsQueue,
  type StudyPriority,
} from '@btd/shared';
import {
  DirectoryModelProvider,
  startInferenceWorker,
  type ModelProvider,
  type RunningInferenceWorker,
  type WorkerConfig,
  type WorkerMetrics,
} from '@btd/inference-worker';
import {
  REPO_ROOT,
  TEST_REDIS_URL,
  deleteKeysWithPrefix,
  sampleImages,
  spawnService,
  startTestS3,
  uniquePrefix,
  waitFor,
  writeTestModels,
  type ServiceProcess,
  type TestS3,
} from './helpers/index.js';

/** Worker settings for tests: short locks so stalled jobs come back within seconds. */
export const FAST_RECOVERY = { lockDurationMs: 2000, stalledIntervalMs: 500, maxStalledCount: 2 } as const;

/** One test's queues and bucket, plus what is needed to run workers on them. */
export interface WorkerTestEnv {
  readonly prefix: string;
  readonly store: ObjectStore;
  readonly storeOptions: ObjectStoreOptions;
  readonly redis: Redis;
  readonly inference: InferenceQueue;
  readonly results: ResultsQueue;
  /** Environment for a worker child process on these queues and this bucket. */
  readonly env: Record<string, string>;
  /** Stores an image and enqueues its inference job; returns the ids. */
  submit(image: Uint8Array, priority?: StudyPriority): Promise<{ studyId: string; imageId: string; jobId: string }>;
  /** Starts an in-process worker with the given models, reporting to `metrics` when given. */
  startWorker(models: ModelProvider, config?: Partial<WorkerConfig>, metrics?: WorkerMetrics): RunningInferenceWorker;
  /** Waits for the result message of an image. */
  resultOf(imageId: string, timeoutMs?: number): Promise<ResultMessage>;
  close(): Promise<void>;
}

/** Creates a fresh queue prefix and bucket on the test's s3rver, the queues on `redisUrl` (the tests' Redis unless given). */
export async function startWorkerEnv(s3: TestS3, redisUrl = TEST_REDIS_URL): Promise<WorkerTestEnv> {
  const prefix = uniquePrefix();
  const store = await s3.createBucket();
  const storeOptions = { ...s3.bucketOptions(), s3Bucket: store.bucket };
  const redis = new Redis(redisUrl);
  const producer = createProducerConnection(redisUrl);
  // A test may start its Redis after the env, to see a worker wait for it.
  for (const connection of [redis, producer]) connection.on('error', () => {});
  const inference = createInferenceQueue(producer, prefix);
  const results = createResultsQueue(producer, prefix);
  const workers: { running: RunningInferenceWorker; connection: Redis }[] = [];
  const logger = createLogger({ name: 'worker-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });
  const env = { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, ...s3.env(storeOptions), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn' };
  return {
    prefix,
    store,
    storeOptions,
    redis,
    inference,
    results,
    env,
    async submit(image, priority = 'routine') {
      const ids = { clientId: 'tester', studyId: `s-${randomUUID()}`, imageId: `i-${randomUUID()}` };
      const objectKey = originalKey(ids);
      await store.put(objectKey, image, 'image/jpeg');
      const job = await enqueueInference(inference, { ...ids, objectKey }, priority);
      return { studyId: ids.studyId, imageId: ids.imageId, jobId: job.id as string };
    },
    startWorker(models, config = {}, metrics) {
      const connection = createWorkerConnection(redisUrl);
      const running = startInferenceWorker({
        config: { queuePrefix: prefix, concurrency: 1, lockDurationMs: 30_000, stalledIntervalMs: 30_000, maxStalledCount: 1, ...config },
        connection,
        store,
        results,
        models,
        logger,
        ...(metrics ? { metrics } : {}),
      });
      workers.push({ running, connection });
      return running;
    },
    async resultOf(imageId, timeoutMs = 60_000) {
      const job = await waitFor(() => results.getJob(resultJobId(imageId)), { timeoutMs, what: `result of ${imageId}` });
      return job.data;
    },
    async close() {
      for (const { running, connection } of workers) {
        await running.close();
        await closeRedis(connection);
      }
      await inference.close();
      await results.close();
      producer.disconnect();
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
    },
  };
}

/** Loads the untrained test models from a directory written by `writeTestModels`. */
export async function loadTestModels(modelsDir: string): Promise<DirectoryModelProvider> {
  await initBackend({ prefer: 'wasm' });
  return DirectoryModelProvider.load(modelsDir, createLogger({ name: 'models', level: 'silent', pretty: false }));
}

/** Reads a file into a Uint8Array. */
export async function readImage(file: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(file));
}

/** What the in-process worker tests of one file share: its S3 server, the test models, an image, and one env per test. */
export interface WorkerSuite {
  readonly s3: TestS3;
  readonly modelsDir: string;
  readonly models: DirectoryModelProvider;
  /** A Br35H image with a tumour. */
  readonly tumourImage: Uint8Array;
  /** The running test's queues and bucket, closed after it. */
  readonly env: WorkerTestEnv;
  /** Starts a fresh env for the rest of the test, once the test has closed its own. */
  renewEnv(): Promise<void>;
}

/** Registers the hooks of a {@link WorkerSuite}; its getters work inside tests. */
export function useWorkerSuite(): WorkerSuite {
  let s3: TestS3 | undefined;
  let modelsDir: string | undefined;
  let models: DirectoryModelProvider | undefined;
  let tumourImage: Uint8Array | undefined;
  let env: WorkerTestEnv | undefined;
  beforeAll(async () => {
    s3 = await startTestS3();
    modelsDir = await writeTestModels();
    models = await loadTestModels(modelsDir);
    const [file] = await sampleImages('br35h/yes', 1);
    tumourImage = await readImage(file as string);
  });
  afterAll(async () => {
    await models?.close();
    await s3?.close();
    if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    env = await startWorkerEnv(started(s3));
  });
  afterEach(async () => {
    await env?.close();
    env = undefined;
  });
  return {
    get s3() {
      return started(s3);
    },
    get modelsDir() {
      return started(modelsDir);
    },
    get models() {
      return started(models);
    },
    get tumourImage() {
      return started(tumourImage);
    },
    get env() {
      return started(env);
    },
    async renewEnv() {
      env = await startWorkerEnv(started(s3));
    },
  };
}

function started<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('the worker suite is only available inside a test');
  return value;
}

/** A worker service running as a child process. */
export type WorkerProcess = ServiceProcess;

const WORKER_MAIN = path.join(REPO_ROOT, 'services/inference-worker/dist/main.js');

/** Starts `services/inference-worker/dist/main.js` with the env's queues and bucket. */
export function spawnWorker(env: WorkerTestEnv, extra: Record<string, string>): WorkerProcess {
  const vars = { ...env.env, LOG_LEVEL: 'info', TF_BACKEND: 'wasm', MODEL_SOURCE: 'directory', ...extra };
  return spawnService(WORKER_MAIN, vars, 'inference worker ready');
}
