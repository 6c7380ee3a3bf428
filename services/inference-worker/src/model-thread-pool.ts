import { Worker } from 'node:worker_threads';
import { ImageDecodeError, type BackendInfo, type ForwardPiece, type ForwardPlan, type ModelManifest, type PieceResult, type Prediction, type PredictOptions } from '@btd/model';
import { ModelRuntimeUnavailableError, threadScript, type ArtifactFiles } from '@btd/shared';
import { PooledModel } from './pooled-model.js';

export type Backend = 'tensorflow' | 'wasm' | 'cpu';

/** Messages to a pool thread; `model` names one of the models it holds. */
export type ModelThreadRequest =
  | { type: 'load'; id: number; model: number; files: ArtifactFiles; backend?: Backend }
  | { type: 'unload'; model: number }
  | { type: 'close' }
  | { type: 'predict'; id: number; model: number; image: Uint8Array; options: PredictOptions }
  | { type: 'pieces'; id: number; model: number; pixels: Uint8Array; count: number; pieces: ForwardPiece[] };

/** Messages from a pool thread, each answering the request of the same id. */
export type ModelThreadReply =
  | { type: 'loaded'; id: number; manifest: ModelManifest; plan: ForwardPlan; backend: BackendInfo }
  | { type: 'prediction'; id: number; prediction: Prediction }
  | { type: 'pieces'; id: number; results: PieceResult[] }
  | { type: 'error'; id: number; message: string; decode: boolean; unsupported: boolean };

type Answer = Extract<ModelThreadReply, { type: 'loaded' | 'prediction' | 'pieces' }>;

/** What a load counts as, in pieces of work, while it holds its thread. */
const LOAD_WEIGHT = 8;

interface Pending {
  resolve: (reply: Answer) => void;
  reject: (error: Error) => void;
}

/** One thread of the pool: its worker, its requests in flight and how much work they are. */
class PoolThread {
  readonly pending = new Map<number, Pending>();
  /** Requests sent and not answered, weighted by their pieces: where the next piece should go. */
  load = 0;
  /** Work answered so far, in the same units. */
  done = 0;
  /** Set once the thread has exited, whatever the cause. */
  exited = false;

  constructor(readonly worker: Worker) {}
}

/**
 * Worker threads, each with its own TensorFlow.js backend, that hold every model the worker serves
 * (each loaded on every thread) and run them for the jobs: a model's forward pass is split into
 * pieces spread over the threads (see {@link PooledModel}), so one image uses every core while the
 * threads never outnumber them. The worker's main thread keeps the queue, storage and results.
 */
export class ModelThreadPool {
  private readonly threads: PoolThread[];
  private nextId = 1;
  private nextModel = 1;
  private failure: Error | undefined;
  private closed = false;
  /** The backend the threads run, as the first load reported it. */
  backendInfo: BackendInfo | undefined;

  private constructor(
    count: number,
    private readonly backend?: Backend,
    private readonly onBroken?: (error: Error) => void,
  ) {
    this.threads = Array.from({ length: count }, () => {
      const thread = new PoolThread(new Worker(threadScript(import.meta.url, 'model-thread.worker')));
      thread.worker.on('message', (reply: ModelThreadReply) => this.settle(thread, reply));
      thread.worker.on('error', (error) => this.fail(error));
      thread.worker.on('exit', (code) => {
        thread.exited = true;
        this.fail(new Error(`model thread exited with code ${code}`));
      });
      // An idle model thread must not keep the process alive; one with requests in flight does.
      thread.worker.unref();
      return thread;
    });
  }

  /**
   * Starts `count` threads; models are loaded onto them with {@link load}. A thread that dies
   * (out of memory, a native abort) leaves the pool failing every request: `onBroken` is then
   * called once, so that the worker can stop taking jobs and be restarted.
   */
  static start(count: number, backend?: Backend, onBroken?: (error: Error) => void): ModelThreadPool {
    if (!(Number.isInteger(count) && count >= 1)) throw new Error(`a model thread pool needs a positive whole number of threads, got ${count}`);
    return new ModelThreadPool(count, backend, onBroken);
  }

  get size(): number {
    return this.threads.length;
  }

  /**
   * Loads an artifact on every thread, one thread after the other: loading holds a thread for a
   * moment, and counted as {@link LOAD_WEIGHT} pieces it steers the running models' pieces to the
   * other threads meanwhile, so a hot swap never stalls the whole pool. Rejects with a thread's
   * reason (and unloads the artifact from the others) if any cannot load it.
   */
  async load(files: ArtifactFiles): Promise<PooledModel> {
    const model = this.nextModel++;
    let loaded: Extract<Answer, { type: 'loaded' }> | undefined;
    try {
      for (let k = 0; k < this.threads.length; k += 1) {
        const message = (id: number): ModelThreadRequest => ({ type: 'load', id, model, files, ...(this.backend ? { backend: this.backend } : {}) });
        loaded = await this.request(k, LOAD_WEIGHT, 'loaded', message);
      }
    } catch (error) {
      this.unload(model);
      throw error;
    }
    if (!loaded) throw new Error('a model thread pool has at least one thread');
    const { manifest, plan, backend } = loaded;
    this.backendInfo ??= backend;
    return new PooledModel(this, model, manifest, plan);
  }

  /** Frees a model on every thread. */
  unload(model: number): void {
    if (this.closed) return;
    for (const { worker } of this.threads) worker.postMessage({ type: 'unload', model } satisfies ModelThreadRequest);
  }

  /** Work each thread has answered (pieces, or 1 per other request), in thread order. */
  workDone(): number[] {
    return this.threads.map((thread) => thread.done);
  }

  /** Runs one model's whole prediction on the least busy thread. */
  async predictWhole(model: number, image: Uint8Array, options: PredictOptions): Promise<Prediction> {
    const reply = await this.request(this.leastBusy(), 1, 'prediction', (id) => ({ type: 'predict', id, model, image, options }));
    return reply.prediction;
  }

  /**
   * Runs pieces of one model's split forward pass on one preprocessed image: each piece goes to
   * the least busy thread (counting the pieces already handed out), one message per thread.
   */
  async runPieces(model: number, pixels: Uint8Array, pieces: readonly ForwardPiece[]): Promise<PieceResult[]> {
    const shares = new Map<number, ForwardPiece[]>();
    for (const piece of pieces) {
      const k = this.leastBusy();
      (this.threads[k] as PoolThread).load += 1;
      shares.set(k, [...(shares.get(k) ?? []), piece]);
    }
    const replies = await Promise.all(
      [...shares].map(([k, share]) => this.request(k, share.length, 'pieces', (id) => ({ type: 'pieces', id, model, pixels, count: 1, pieces: share }), true)),
    );
    return replies.flatMap((reply) => reply.results);
  }

  /** The thread with the least work waiting. */
  private leastBusy(): number {
    return this.threads.reduce((best, thread, k) => (thread.load < (this.threads[best] as PoolThread).load ? k : best), 0);
  }

  /**
   * Sends a request to thread `k`, counted as `weight` units of its work until answered (already
   * counted if `reserved`), and resolves with its reply of type `expect`.
   */
  private request<T extends Answer['type']>(
    k: number,
    weight: number,
    expect: T,
    message: (id: number) => ModelThreadRequest,
    reserved = false,
  ): Promise<Extract<Answer, { type: T }>> {
    const thread = this.threads[k] as PoolThread;
    if (!reserved) thread.load += weight;
    const done = () => {
      thread.load -= weight;
      thread.done += weight;
      if (thread.pending.size === 0) thread.worker.unref();
    };
    if (this.failure || this.closed) {
      done();
      return Promise.reject(this.failure ?? new ModelRuntimeUnavailableError('model thread pool closed'));
    }
    const id = this.nextId++;
    if (thread.pending.size === 0) thread.worker.ref();
    return new Promise<Extract<Answer, { type: T }>>((resolve, reject) => {
      thread.pending.set(id, {
        resolve: (reply) => {
          done();
          if (reply.type === expect) resolve(reply as Extract<Answer, { type: T }>);
          else reject(new Error(`model thread answered ${reply.type} to a request for ${expect}`));
        },
        reject: (error) => (done(), reject(error)),
      });
      thread.worker.postMessage(message(id));
    });
  }

  private settle(thread: PoolThread, reply: ModelThreadReply): void {
    const waiting = thread.pending.get(reply.id);
    if (!waiting) return;
    thread.pending.delete(reply.id);
    if (reply.type === 'error') waiting.reject(reply.decode ? new ImageDecodeError(reply.message, { unsupported: reply.unsupported }) : new Error(reply.message));
    else waiting.resolve(reply);
  }

  private fail(cause: Error): void {
    // Not an artifact's fault: a load that meets it is retried later, not refused.
    const error = new ModelRuntimeUnavailableError(cause.message, { cause });
    if (!this.failure && !this.closed) this.onBroken?.(error);
    this.failure ??= error;
    for (const thread of this.threads) {
      for (const waiting of thread.pending.values()) waiting.reject(error);
      thread.pending.clear();
    }
  }

  /**
   * Stops every thread: requests not yet answered are rejected at once, and each thread exits once
   * it has finished what it was running (stopping one inside a WebAssembly call can take the process
   * down), or is terminated after `graceMs`. Idempotent.
   */
  async close(graceMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new Error('model thread pool closed'));
    await Promise.all(
      this.threads.map(async ({ worker, exited: gone }) => {
        // A thread that already died sends no second exit.
        if (gone) return;
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.ref();
        worker.postMessage({ type: 'close' } satisfies ModelThreadRequest);
        const timer = setTimeout(() => void worker.terminate(), graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
