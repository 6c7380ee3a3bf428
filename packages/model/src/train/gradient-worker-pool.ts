import { Worker } from 'node:worker_threads';
import type { PredictResult, StepResult, WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.js';

/**
 * The worker script next to this module; when this module runs from TypeScript source (under a test
 * runner), the compiled copy in dist/, since worker threads load plain JavaScript.
 */
function workerScript(): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL('../../dist/train/gradient-worker.js', import.meta.url)
    : new URL('./gradient-worker.js', import.meta.url);
}

interface Pending {
  resolve: (reply: StepResult | PredictResult) => void;
  reject: (error: Error) => void;
}

/**
 * Data-parallel training workers: each holds a replica of the model on its own backend (wasm runs one
 * thread per process, so parallelism comes from threads with a backend each). A step sends the current
 * weights and a shard of the batch to each worker; gradients come back to be averaged.
 */
export class GradientWorkerPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** Why the pool cannot serve any more (a worker exited or failed); every request from then on gets it. */
  private failure: Error | undefined;
  backend = 'unknown';

  private constructor() {}

  static async start(count: number, init: WorkerInit): Promise<GradientWorkerPool> {
    const pool = new GradientWorkerPool();
    const script = workerScript();
    const ready: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const worker = new Worker(script);
      pool.workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const onReady = (reply: WorkerReply) => {
            if (reply.type === 'ready') {
              pool.backend = reply.backend;
              worker.off('message', onReady);
              worker.on('message', (r: WorkerReply) => pool.settle(r));
              resolve();
            } else if (reply.type === 'error') reject(new Error(reply.message));
          };
          worker.on('message', onReady);
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`gradient worker ${i + 1} of ${count} exited while starting (exit code ${code})`)));
        }),
      );
      // A worker that fails or exits takes the pool with it: a step without its shard would never finish.
      worker.on('error', (error) => pool.fail(new Error(`gradient worker ${i + 1} of ${count} failed: ${error.message}`, { cause: error })));
      worker.on('exit', (code) => pool.fail(new Error(`gradient worker ${i + 1} of ${count} exited (exit code ${code})`)));
      worker.postMessage(init);
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  private settle(reply: WorkerReply): void {
    if (reply.type === 'ready') return;
    const pending = reply.id === undefined ? undefined : this.pending.get(reply.id);
    if (!pending) {
      if (reply.type === 'error') this.failAll(new Error(reply.message));
      return;
    }
    this.pending.delete(reply.id as number);
    if (reply.type === 'error') pending.reject(new Error(reply.message));
    else pending.resolve(reply);
  }

  /** Fails what is pending and every later request, unless the pool was closed (its workers then exit as told). */
  private fail(error: Error): void {
    if (this.closed) return;
    this.failure ??= error;
    this.failAll(this.failure);
  }

  private failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  private request<T extends StepResult | PredictResult>(worker: Worker, message: WorkerRequest & { id: number }): Promise<T> {
    if (this.closed) return Promise.reject(new Error('worker pool closed'));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(message.id, { resolve: resolve as Pending['resolve'], reject });
      worker.postMessage(message);
    });
  }

  /** One gradient step over shards (one per worker); empty shards are skipped. */
  step(weights: Float32Array[], shards: Int32Array[], seed: number): Promise<StepResult[]> {
    return Promise.all(
      shards.flatMap((indices, i) =>
        indices.length === 0
          ? []
          : [this.request<StepResult>(this.workers[i] as Worker, { type: 'step', id: this.nextId++, weights, indices, seed: seed * 31 + i })],
      ),
    );
  }

  /** Probabilities (inference mode) for the given image indices, spread over the workers. */
  async predict(weights: Float32Array[], indices: Int32Array, batchSize = 64): Promise<Float32Array[]> {
    const chunks: Int32Array[] = [];
    for (let i = 0; i < indices.length; i += batchSize) chunks.push(indices.subarray(i, i + batchSize));
    const results: Float32Array[] = new Array(chunks.length);
    let next = 0;
    await Promise.all(
      this.workers.map(async (worker) => {
        while (next < chunks.length) {
          const k = next++;
          const reply = await this.request<PredictResult>(worker, { type: 'predict', id: this.nextId++, weights, indices: chunks[k] as Int32Array });
          results[k] = reply.probabilities;
        }
      }),
    );
    return results;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('worker pool closed'));
    await Promise.allSettled(this.workers.map((w) => w.terminate()));
  }
}
