import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueInferenceBulk, originalKey } from '@btd/shared';
import type { DirectoryModelProvider } from '@btd/inference-worker';
import { sampleImages, startTestS3, waitFor, writeTestModels, type TestS3 } from './helpers/index.js';
import { loadTestModels, readImage, startWorkerEnv, type WorkerTestEnv } from './worker-fixtures.js';

const WARM_UP_JOBS = 20;
const MEASURED_JOBS = 150; // two predictions each: 300 predictions

let s3: TestS3;
let modelsDir: string;
let models: DirectoryModelProvider;
let env: WorkerTestEnv;
let objectKey: string;

beforeAll(async () => {
  s3 = await startTestS3();
  modelsDir = await writeTestModels();
  models = await loadTestModels(modelsDir);
  env = await startWorkerEnv(s3);
  const [file] = await sampleImages('br35h/yes', 1);
  const image = await sharp(await readImage(file as string)).resize(256, 256).jpeg().toBuffer();
  // Every job reads the same original: the test is about the worker's memory, not S3 volume.
  objectKey = originalKey({ clientId: 'tester', studyId: 'memory', imageId: 'original' });
  await env.store.put(objectKey, image, 'image/jpeg');
});

afterAll(async () => {
  await env?.close();
  await models?.close();
  await s3?.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

async function runJobs(count: number): Promise<void> {
  const before = await env.inference.getCompletedCount();
  const items = Array.from({ length: count }, () => ({
    payload: { clientId: 'tester', studyId: 'memory', imageId: `i-${randomUUID()}`, objectKey },
    priority: 'routine' as const,
  }));
  await enqueueInferenceBulk(env.inference, items);
  await waitFor(async () => (await env.inference.getCompletedCount()) === before + count, { timeoutMs: 240_000, intervalMs: 200 });
}

describe('inference worker memory', () => {
  it(`keeps the tensor count flat over ${MEASURED_JOBS} jobs`, async () => {
    env.startWorker(models, { concurrency: 2 });
    await runJobs(WARM_UP_JOBS);
    const warm = tf.memory();
    expect(warm.numTensors).toBeGreaterThan(0); // the same tfjs instance as the models (their weights)
    await runJobs(MEASURED_JOBS);
    const after = tf.memory();
    expect(await env.inference.getFailedCount()).toBe(0);
    expect(after.numTensors).toBe(warm.numTensors);
    expect(after.numBytes).toBe(warm.numBytes);
  });
});
