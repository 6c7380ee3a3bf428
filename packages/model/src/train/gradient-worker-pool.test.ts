import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { buildClassifier, DEFAULT_ARCHITECTURE } from '../model/architecture.js';
import { DEFAULT_AUGMENTATION } from './augmentation.js';
import { GradientWorkerPool } from './gradient-worker-pool.js';
import { readWeights } from './training-loop.js';

const SIDE = 16;
const COUNT = 8;

/** A pool of `size` workers on a tiny classifier and blank images, the weights to step with, and one shard per worker. */
async function tinyPool(size: number) {
  await initBackend();
  const model = buildClassifier({ ...DEFAULT_ARCHITECTURE, filters: [4, 8], convsPerBlock: 1, inputSize: SIDE, numClasses: 2 }, 1);
  const pool = await GradientWorkerPool.start(size, {
    type: 'init',
    topology: JSON.stringify(model.toJSON(null, false)),
    pixels: new SharedArrayBuffer(COUNT * SIDE * SIDE),
    labels: Int32Array.from({ length: COUNT }, (_, i) => i % 2),
    size: SIDE,
    numClasses: 2,
    classWeights: [1, 1],
    labelSmoothing: 0,
    l2: 0,
    augmentation: DEFAULT_AUGMENTATION,
  });
  const weights = readWeights(model);
  model.dispose();
  const shards = Array.from({ length: size }, (_, w) => Int32Array.from({ length: COUNT / size }, (_, i) => w * (COUNT / size) + i));
  const workers = (pool as unknown as { workers: Worker[] }).workers;
  return { pool, weights, shards, workers };
}

/** Within a few seconds: a pool that hangs fails the test instead of the run. */
const soon = <T>(promise: Promise<T>) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still pending after 5 s')), 5000))]);

describe('a gradient worker pool', () => {
  it('fails the next step and every later request once a worker has exited', async () => {
    const { pool, weights, shards, workers } = await tinyPool(2);
    await expect(pool.step(weights, shards, 1)).resolves.toHaveLength(2);
    const exited = new Promise((resolve) => workers[1]!.once('exit', resolve));
    await workers[1]!.terminate();
    await exited;
    await expect(soon(pool.step(weights, shards, 2))).rejects.toThrow(/gradient worker 2 of 2 exited/);
    await expect(soon(pool.predict(weights, shards[0]!))).rejects.toThrow(/gradient worker 2 of 2 exited/);
    await pool.close();
  });

  it('remembers a worker failure reported while nothing was pending', async () => {
    const { pool, weights, shards, workers } = await tinyPool(1);
    workers[0]!.emit('error', new Error('out of memory'));
    await expect(soon(pool.step(weights, shards, 1))).rejects.toThrow(/gradient worker 1 of 1 failed: out of memory/);
    await pool.close();
  });

  it('answers requests once closed with its closing, not as a worker failure', async () => {
    const { pool, weights, shards } = await tinyPool(1);
    await pool.step(weights, shards, 1);
    await pool.close();
    await expect(soon(pool.step(weights, shards, 2))).rejects.toThrow(/^worker pool closed$/);
  });
});
