import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend, writeInitialArtifact } from '@btd/model';
import { createLogger, ModelRegistry, resultKey, type ResultMessage } from '@btd/shared';
import { RegistryModelProvider } from '@btd/inference-worker';
import { mriSlices } from './api-fixtures.js';
import { sleep, startTestS3, writeTestModels, type TestS3 } from './helpers/index.js';
import { startWorkerEnv, type WorkerTestEnv } from './worker-fixtures.js';

const logger = createLogger({ name: 'hot-reload-pipeline', level: 'silent', pretty: false });
let s3: TestS3;
let scratch: string;
let modelsDir: string;
let env: WorkerTestEnv;
let provider: RegistryModelProvider;
let registry: ModelRegistry;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
  s3 = await startTestS3();
  scratch = await mkdtemp(path.join(tmpdir(), 'btd-hot-reload-'));
  modelsDir = await writeTestModels(path.join(scratch, 'models'));
});

afterAll(async () => {
  await s3?.close();
  await rm(scratch, { recursive: true, force: true });
});

beforeEach(async () => {
  env = await startWorkerEnv(s3);
  registry = new ModelRegistry({ store: env.store, redis: env.redis, namespace: env.prefix });
  provider = new RegistryModelProvider({ registry, logger, workerId: 'pipeline-worker', modelsDir });
  await provider.start();
});

afterEach(async () => {
  await env.close();
  await provider.close();
});

describe('the inference worker during a promotion', () => {
  it('serves every job of a steady stream, switching versions between jobs, and records version and content hash', async () => {
    env.startWorker(provider, { concurrency: 2 });
    const images = mriSlices('yes', 3).map((slice) => slice.bytes);
    const old = (await registry.promoted('tumor-binary'))!;
    const nextDir = path.join(scratch, `next-${env.prefix}`);
    await writeInitialArtifact({ task: 'tumor-binary', outDir: nextDir, version: 'test-2' });
    const next = await registry.publishDirectory('tumor-binary', nextDir);

    const submitted: string[] = [];
    for (let i = 0; i < 40; i++) {
      if (i === 15) await registry.promote('tumor-binary', next.version, { by: 'test', reason: 'hot reload under load' });
      submitted.push((await env.submit(images[i % images.length]!)).imageId);
      await sleep(20);
    }
    const results = await Promise.all(submitted.map((imageId) => env.resultOf(imageId, 60_000)));

    expect(results.map((r) => r.kind)).toEqual(submitted.map(() => 'succeeded'));
    const versions = results.map((r) => binaryModelOf(r).version);
    expect(versions[0]).toBe(old.version);
    expect(versions.at(-1)).toBe(next.version);
    // Jobs start in submission order and take their model at the start: one switch, never back.
    const firstNew = versions.indexOf(next.version);
    expect(versions.slice(0, firstNew).every((v) => v === old.version)).toBe(true);
    expect(versions.slice(firstNew).every((v) => v === next.version)).toBe(true);

    const hashes = { [old.version]: old.contentHash, [next.version]: next.contentHash };
    for (const imageId of [submitted[0]!, submitted.at(-1)!]) {
      const { tasks } = await env.store.getJson<{ tasks: Record<string, { task: string; model: { version: string; contentHash: string } }> }>(resultKey(imageId));
      const document = tasks['tumor-binary']!;
      expect(document.task).toBe('tumor-binary');
      expect(document.model.contentHash).toBe(hashes[document.model.version]);
    }
  }, 240_000);
});

function binaryModelOf(result: ResultMessage) {
  if (result.kind !== 'succeeded') throw new Error(`image failed: ${result.reason}`);
  const model = result.summary.models.find((m) => m.task === 'tumor-binary');
  if (!model) throw new Error('result names no tumor-binary model');
  return model;
}
