import { rm } from 'node:fs/promises';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ImageDecodeError } from '@btd/model';
import { createWorkerMetrics, type DirectoryModelProvider, type ModelProvider, type RunningInferenceWorker, type ServedModel, type WorkerMetrics } from '@btd/inference-worker';
import { sampleImages, startTestS3, waitFor, writeTestModels, type TestS3 } from './helpers/index.js';
import { loadTestModels, readImage, startWorkerEnv, type WorkerTestEnv } from './worker-fixtures.js';

/** 2000×2000 pixels: 40 MB by the header at 10 bytes a pixel. */
const SIDE = 2000;
const IMAGE_DECODE_BYTES = SIDE * SIDE * 10;

let s3: TestS3;
let modelsDir: string;
let models: DirectoryModelProvider;
let env: WorkerTestEnv;
let image: Uint8Array;
let running: RunningInferenceWorker | undefined;

beforeAll(async () => {
  s3 = await startTestS3();
  modelsDir = await writeTestModels();
  models = await loadTestModels(modelsDir);
  const [file] = await sampleImages('br35h/yes', 1);
  image = await sharp(await readImage(file as string)).resize(SIDE, SIDE, { fit: 'fill' }).jpeg().toBuffer();
});

afterEach(async () => {
  await running?.close();
  running = undefined;
  await env?.close();
});

afterAll(async () => {
  await models?.close();
  await s3?.close();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

const metricValue = async (metrics: WorkerMetrics, name: 'decodeWaits' | 'decodeBytes' | 'decodesWaiting') => (await metrics[name].get()).values[0]?.value ?? 0;

/** Two large images queued before a worker at concurrency 2 with `budget` starts; both must succeed. */
async function runTwo(budget: number): Promise<WorkerMetrics> {
  env = await startWorkerEnv(s3);
  const submitted = [await env.submit(image), await env.submit(image)];
  const metrics = createWorkerMetrics();
  running = env.startWorker(models, { concurrency: 2, maxInflightDecodeBytes: budget }, metrics);
  for (const { imageId } of submitted) expect((await env.resultOf(imageId, 120_000)).kind).toBe('succeeded');
  await waitFor(async () => (await env.inference.getCompletedCount()) === 2, { timeoutMs: 60_000 });
  return metrics;
}

describe('inference worker decode memory (WORKER_MAX_INFLIGHT_DECODE_BYTES)', () => {
  it('decodes two large images one after the other when the budget holds one', async () => {
    const metrics = await runTwo(Math.floor(IMAGE_DECODE_BYTES * 1.5));
    expect(await metricValue(metrics, 'decodeWaits')).toBe(1);
    expect(await metricValue(metrics, 'decodeBytes')).toBe(0);
    expect(await metricValue(metrics, 'decodesWaiting')).toBe(0);
  });

  it('decodes them side by side when the budget holds both', async () => {
    const metrics = await runTwo(IMAGE_DECODE_BYTES * 2);
    expect(await metricValue(metrics, 'decodeWaits')).toBe(0);
  });

  it('keeps the decode memory of an image until both models are done with it, even when one refuses it at once', async () => {
    env = await startWorkerEnv(s3);
    let typeStarted = false;
    let letTypeFinish!: () => void;
    const typeHeld = new Promise<void>((resolve) => (letTypeFinish = resolve));
    // The models side by side, as on a pool of threads: the detector refuses the image at once, the type model takes its time.
    const provider: ModelProvider = {
      acquire(task) {
        const lease = models.acquire(task);
        const predict: ServedModel['predict'] =
          task === 'tumor-binary'
            ? () => Promise.reject(new ImageDecodeError('image does not look like the scans tumor-binary was trained on', { unsupported: true }))
            : async (input, options) => {
                typeStarted = true;
                await typeHeld;
                return lease.model.predict(input, options);
              };
        return { model: { ...lease.model, predict }, release: () => lease.release() };
      },
    };
    const { imageId } = await env.submit(image);
    const metrics = createWorkerMetrics();
    running = env.startWorker(provider, { concurrency: 1, modelThreads: true, maxInflightDecodeBytes: IMAGE_DECODE_BYTES * 4 }, metrics);
    await waitFor(async () => typeStarted, { timeoutMs: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The type model still works on the image: its memory stays taken, and the job has not ended.
    expect(await metricValue(metrics, 'decodeBytes')).toBe(IMAGE_DECODE_BYTES);
    expect(await env.inference.getFailedCount()).toBe(0);

    letTypeFinish();
    const result = await env.resultOf(imageId, 60_000);
    expect(result).toMatchObject({ kind: 'failed', reason: expect.stringContaining('does not look like the scans') });
    await waitFor(async () => (await metricValue(metrics, 'decodeBytes')) === 0, { timeoutMs: 10_000 });
  });

  it('decodes an image larger than the whole budget alone rather than refusing it', async () => {
    const metrics = await runTwo(Math.floor(IMAGE_DECODE_BYTES / 4));
    expect(await env.inference.getFailedCount()).toBe(0);
    expect(await metricValue(metrics, 'decodeWaits')).toBe(1);
  });
});
