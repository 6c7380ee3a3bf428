import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { QueueEvents } from 'bullmq';
import { afterEach, beforeEach } from 'vitest';
import {
  createLogger,
  createTrainingQueue,
  createWorkerConnection,
  type ObjectStore,
  type Redis,
  type TrainingJob,
  type TrainingProgress,
  type TrainingQueue,
} from '@btd/shared';
import { loadTrainerConfig, type TrainerConfig } from '../services/trainer/src/config.js';
import { startTrainer, type Trainer, type TrainerDeps } from '../services/trainer/src/trainer.js';
import { REPO_ROOT, TEST_REDIS_URL, datasetsDir, spawnService, type ServiceProcess } from './helpers/index.js';
import type { ApiTestEnv } from './api-test-env.js';
import type { RegistryTestEnv } from './registry-fixtures.js';

/** Sorted Br35H file names of one folder, from `offset` on (tests take disjoint slices). */
async function br35h(folder: 'yes' | 'no', offset: number, count: number): Promise<string[]> {
  const root = datasetsDir();
  if (!root) throw new Error('datasets not found: set BTD_DATASETS_DIR');
  const dir = path.join(root, 'br35h', folder);
  const names = (await readdir(dir)).filter((n) => n.endsWith('.jpg')).sort();
  return names.slice(offset, offset + count).map((name) => path.join(dir, name));
}

/** Images per class folder, or the same count for both. */
type Counts = number | { yes: number; no: number };
const countOf = (counts: Counts, folder: 'yes' | 'no') => (typeof counts === 'number' ? counts : counts[folder]);

/**
 * `TRAINER_DATASET_ROOTS` of `roots` and the shared datasets: the images of a {@link linkDataset}
 * folder are links to those, and a trainer reads a link only when it stays within its roots.
 */
export const datasetRootsWithShared = (...roots: string[]): string => [...roots, datasetsDir()].filter(Boolean).join(',');

/** A dataset folder (`yes/`, `no/`; a folder with a count of 0 is left out) of links to real slices; nothing is copied. */
export async function linkDataset(dir: string, counts: Counts, offset: number): Promise<string> {
  for (const folder of ['yes', 'no'] as const) {
    if (countOf(counts, folder) === 0) continue;
    await mkdir(path.join(dir, folder), { recursive: true });
    for (const file of await br35h(folder, offset, countOf(counts, folder))) await symlink(file, path.join(dir, folder, path.basename(file)));
  }
  return dir;
}

/** Uploads real slices as `<prefix><class folder>/<file>`, the layout a training request's S3 dataset has. */
export async function uploadDataset(store: ObjectStore, prefix: string, counts: Counts, offset: number): Promise<void> {
  for (const folder of ['yes', 'no'] as const) {
    for (const file of await br35h(folder, offset, countOf(counts, folder))) {
      await store.put(`${prefix}${folder}/${path.basename(file)}`, await readFile(file), 'image/jpeg');
    }
  }
}

/**
 * Trainer settings for a test: its own prefix and work dir, short locks, a small evaluation set; the
 * service's defaults for the rest.
 */
export function trainerConfig(prefix: string, workDir: string, overrides: Partial<TrainerConfig> = {}): TrainerConfig {
  return {
    ...loadTrainerConfig({}),
    redisUrl: TEST_REDIS_URL,
    queuePrefix: prefix,
    s3Bucket: 'unused',
    s3Region: 'us-east-1',
    s3ForcePathStyle: true,
    logLevel: 'silent',
    concurrency: 1,
    workDir,
    datasetRoots: datasetRootsWithShared(workDir),
    evalMaxImages: 100,
    gateTolerance: 0,
    modelsDir: path.join(workDir, 'no-bundled-models'),
    backend: 'wasm',
    lockDurationMs: 30_000,
    s3OutageBudgetMs: 3_600_000,
    shutdownTimeoutMs: 30_000,
    ...overrides,
  };
}

/** A test's training queue on its registry env, the progress its jobs report, and the in-process trainer it starts. */
export interface TrainerTestBed {
  readonly queue: TrainingQueue;
  /** Every progress each job reported, in order, by job id. */
  readonly progress: Map<string, TrainingProgress[]>;
  readonly events: QueueEvents;
  /** Starts a trainer in this process with {@link trainerConfig} and `overrides` (and `readers`, if given); it is closed after the test. */
  start(overrides?: Partial<TrainerConfig> & Pick<TrainerDeps['config'], 's3OutageMaxDelayMs'>, readers?: TrainerDeps['readers']): Trainer;
}

/** Registers the hooks of a {@link TrainerTestBed} on `env` (call after `useRegistryEnv`); its getters work inside tests. */
export function useTrainerTestBed(env: RegistryTestEnv): TrainerTestBed {
  const logger = createLogger({ name: 'trainer-test', level: 'silent', pretty: false });
  const progress = new Map<string, TrainingProgress[]>();
  let connection: Redis | undefined;
  let queue: TrainingQueue | undefined;
  let events: QueueEvents | undefined;
  let trainer: Trainer | undefined;
  beforeEach(async () => {
    connection = createWorkerConnection(TEST_REDIS_URL);
    queue = createTrainingQueue(env.redis, env.prefix);
    events = new QueueEvents('training', { connection: { url: TEST_REDIS_URL }, prefix: env.prefix });
    progress.clear();
    events.on('progress', ({ jobId, data }) => progress.set(jobId, [...(progress.get(jobId) ?? []), data as TrainingProgress]));
    await events.waitUntilReady();
  });
  afterEach(async () => {
    await trainer?.close();
    trainer = undefined;
    await events?.close();
    await queue?.close();
    connection?.disconnect();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the trainer test bed is only available inside a test');
    return value;
  };
  return {
    get queue() {
      return started(queue);
    },
    get events() {
      return started(events);
    },
    progress,
    start({ s3OutageMaxDelayMs, ...overrides } = {}, readers) {
      const config = { ...trainerConfig(env.prefix, path.join(env.dir, 'trainer'), overrides), ...(s3OutageMaxDelayMs === undefined ? {} : { s3OutageMaxDelayMs }) };
      trainer = startTrainer({ config, connection: started(connection), registry: env.registry, store: env.store, logger, ...(readers ? { readers } : {}) });
      return trainer;
    },
  };
}

/** Hyper-parameters that train in seconds on two cores: small images, few epochs, a few dozen images. */
export const TINY_TRAINING = { epochs: 2, inputSize: 32, batchSize: 16, maxImages: 40, seed: 7 } as const;

/** A trainer running as its own process (`services/trainer/dist/main.js`). */
export type TrainerProcess = ServiceProcess;

/** Starts the built trainer with the given environment. */
export function spawnTrainer(env: Record<string, string>): TrainerProcess {
  const script = path.join(REPO_ROOT, 'services/trainer/dist/main.js');
  return spawnService(script, { LOG_LEVEL: 'info', TF_BACKEND: 'wasm', ...env }, 'trainer consuming the training queue');
}

/** Asks a test API for a tumor-binary training on a local folder, as its admin client (`ops`); returns the status and body. */
export async function requestLocalTraining(env: ApiTestEnv, folder: string, hyperParameters: TrainingJob['hyperParameters'] = { epochs: 1 }) {
  const response = await env.api.app.inject({
    method: 'POST',
    url: '/v1/trainings',
    headers: env.auth('ops'),
    payload: { task: 'tumor-binary', dataset: { kind: 'local', path: folder }, hyperParameters },
  });
  return { status: response.statusCode, body: response.json<{ id?: string; code?: string; message?: string }>() };
}
