import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend, loadModel, writeInitialArtifact, type ModelManifest, type Task } from '@btd/model';
import { afterEach, beforeEach } from 'vitest';
import { ModelRegistry, ObjectStore, Redis } from '@btd/shared';
import { TEST_REDIS_URL, deleteKeysWithPrefix, startTestS3, uniquePrefix, type TestS3 } from './helpers/index.js';

/** One test's world: its own s3rver and bucket, its own Redis namespace, a scratch folder. */
export interface RegistryTestEnv {
  /** The test's S3 server, to stop and restart it. */
  s3: TestS3;
  store: ObjectStore;
  redis: Redis;
  /** Queue prefix and registry namespace, unique per test. */
  prefix: string;
  registry: ModelRegistry;
  /** Scratch folder, removed by `close()`. */
  dir: string;
  /** Environment pointing a service process at this Redis namespace and bucket. */
  serviceEnv: Record<string, string>;
  close(): Promise<void>;
}

/** Starts an s3rver with a fresh bucket and a fresh Redis namespace. */
export async function startRegistryEnv(): Promise<RegistryTestEnv> {
  const dir = await mkdtemp(path.join(tmpdir(), 'btd-registry-'));
  const s3 = await startTestS3();
  const bucket = s3.bucketOptions();
  const store = new ObjectStore(bucket);
  await store.ensureBucket();
  const redis = new Redis(TEST_REDIS_URL);
  const prefix = uniquePrefix();
  const registry = new ModelRegistry({ store, redis, namespace: prefix });
  const serviceEnv = { ...s3.env(bucket), REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix };
  const close = async (): Promise<void> => {
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
    await store.deletePrefix('').catch(() => 0);
    store.close();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { s3, store, redis, prefix, registry, dir, serviceEnv, close };
}

/**
 * A fresh {@link RegistryTestEnv} for every test of the calling file: started before each test
 * (ahead of the file's own `beforeEach` hooks) and closed after it (after the file's `afterEach`).
 */
export function useRegistryEnv(): RegistryTestEnv {
  const env = {} as RegistryTestEnv;
  beforeEach(async () => {
    Object.assign(env, await startRegistryEnv());
  });
  afterEach(async () => {
    await env.close();
  });
  return env;
}

type WeightEntry = { name: string; shape: number[]; dtype?: string };

async function readWeightLayout(dir: string): Promise<{ entries: WeightEntry[]; weights: Float32Array }> {
  const modelJson = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as { weightsManifest: { weights: WeightEntry[] }[] };
  const bytes = await readFile(path.join(dir, 'weights.bin'));
  const weights = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { entries: modelJson.weightsManifest.flatMap((group) => group.weights), weights };
}

async function refreshExpectedOutput(dir: string): Promise<ModelManifest> {
  const manifestFile = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as ModelManifest;
  const probe = manifest.expectedOutput?.image ?? 'probe.png';
  const model = await loadModel(dir);
  try {
    const out = await model.predict(await readFile(path.join(dir, probe)), { heatmap: false });
    manifest.expectedOutput = { image: probe, probabilities: out.probabilities };
  } finally {
    model.dispose();
  }
  await writeFile(manifestFile, JSON.stringify(manifest, null, 2));
  return manifest;
}

/**
 * Makes the classifier ignore the image and always answer `label`: its kernel is zeroed and its
 * bias favours one class. A real model whose metrics on any set are known in advance.
 */
async function makeConstant(dir: string, classes: readonly string[], label: string): Promise<void> {
  await setConstantClassifier(dir, classes, label);
  await refreshExpectedOutput(dir);
}

async function setConstantClassifier(dir: string, classes: readonly string[], label: string): Promise<void> {
  const { entries, weights } = await readWeightLayout(dir);
  let offset = 0;
  for (const entry of entries) {
    const size = entry.shape.reduce((a, b) => a * b, 1);
    if (entry.name.startsWith('classifier/kernel')) weights.fill(0, offset, offset + size);
    if (entry.name.startsWith('classifier/bias')) classes.forEach((c, i) => (weights[offset + i] = c === label ? 8 : 0));
    offset += size;
  }
  await writeFile(path.join(dir, 'weights.bin'), new Uint8Array(weights.buffer));
}

/**
 * Finite weights that answer otherwise than the manifest's probe record: the classifier is made to
 * say the first class for any image, and the recorded probe output is left as it was.
 */
export async function answerOtherwise(dir: string): Promise<void> {
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
  await setConstantClassifier(dir, manifest.classes, manifest.classes[0]!);
}

/**
 * Writes a real, untrained artifact for `task` under `root` (a new folder each call, so each has
 * its own weights and content hash). With `alwaysSays`, the model answers that class for any image.
 */
export async function makeArtifact(root: string, task: Task, options: { alwaysSays?: string; inputSize?: number } = {}): Promise<string> {
  await initBackend({ prefer: 'wasm' });
  const dir = await mkdtemp(path.join(root, `${task}-`));
  const manifest = await writeInitialArtifact({ task, outDir: dir, inputSize: options.inputSize ?? 32 });
  if (options.alwaysSays) await makeConstant(dir, manifest.classes, options.alwaysSays);
  return dir;
}

/** Publishes and promotes a model of `task` that answers `alwaysSays` for any image; returns its version. */
export async function promoteConstantBaseline(env: RegistryTestEnv, alwaysSays: string, task: Task = 'tumor-binary'): Promise<string> {
  const dir = await makeArtifact(env.dir, task, { alwaysSays });
  const { version } = await env.registry.publishDirectory(task, dir);
  await env.registry.promote(task, version, { by: 'test', reason: 'baseline' });
  return version;
}

/**
 * Weights of the right length overwritten with noise, as a bad disk or a botched upload would leave
 * them: they load, but compute nonsense (NaN, or saturated outputs) that the probe check must catch.
 */
export async function scrambleWeights(dir: string): Promise<void> {
  const file = path.join(dir, 'weights.bin');
  const bytes = await readFile(file);
  let state = 0x2545f491;
  for (let i = 0; i < bytes.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  await writeFile(file, bytes);
}

/** A manifest that promises another input size than the topology has (its preprocessing agreeing, so that the topology refuses it). */
export async function claimWrongInputSize(dir: string): Promise<void> {
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as ModelManifest;
  manifest.inputSize += 16;
  manifest.preprocessing.size = manifest.inputSize;
  await writeFile(file, JSON.stringify(manifest, null, 2));
}
