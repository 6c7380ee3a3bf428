import { Worker } from 'node:worker_threads';
import { ImageDecodeError, type LoadedModel, type ModelManifest, type Prediction, type PredictOptions } from '@btd/model';
import type { ArtifactFiles } from '@btd/shared';
import { threadScript } from './thread-script.js';

/** Messages to the model thread. */
export type ModelThreadRequest =
  | { type: 'load'; files: ArtifactFiles; backend?: 'tensorflow' | 'wasm' | 'cpu' }
  | { type: 'predict'; id: number; image: Uint8Array; options: PredictOptions };

/** Messages from the model thread. */
export type ModelThreadReply =
  | { type: 'loaded'; manifest: ModelManifest }
  | { type: 'prediction'; id: number; prediction: Prediction }
  | { type: 'error'; id?: number; message: string; decode: boolean };

interface Pending {
  resolve: (prediction: Prediction) => void;
  reject: (error: Error) => void;
}

/**
 * A model that runs on a thread of its own, with its own backend. The worker gives each of its two
 * models one, so that a job's two forward passes run on two cores at once: the latency of one image
 * falls to that of the slower model, while a saturated machine does the same work as before.
 */
export class ThreadedModel implements LoadedModel {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private disposed = false;

  private constructor(
    private readonly worker: Worker,
    readonly manifest: ModelManifest,
  ) {
    worker.on('message', (reply: ModelThreadReply) => {
      if (reply.type === 'loaded' || reply.id === undefined) return;
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (reply.type === 'prediction') waiting.resolve(reply.prediction);
      else waiting.reject(reply.decode ? new ImageDecodeError(reply.message) : new Error(reply.message));
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => this.failAll(new Error(`model thread exited with code ${code}`)));
  }

  /** Starts a thread and loads the artifact in it; rejects with the thread's reason if it cannot. */
  static async load(files: ArtifactFiles, backend?: 'tensorflow' | 'wasm' | 'cpu'): Promise<ThreadedModel> {
    const worker = new Worker(threadScript('model-thread.worker'));
    let detach = () => {};
    try {
      const manifest = await new Promise<ModelManifest>((resolve, reject) => {
        const onMessage = (reply: ModelThreadReply) => {
          if (reply.type === 'loaded') resolve(reply.manifest);
          else reject(new Error(reply.type === 'error' ? reply.message : `unexpected reply ${reply.type}`));
        };
        const onExit = (code: number) => reject(new Error(`model thread exited with code ${code} while loading`));
        worker.on('message', onMessage).on('error', reject).on('exit', onExit);
        detach = () => worker.off('message', onMessage).off('error', reject).off('exit', onExit);
        const request: ModelThreadRequest = { type: 'load', files, ...(backend ? { backend } : {}) };
        worker.postMessage(request);
      });
      detach();
      // An idle model thread must not keep the process alive.
      worker.unref();
      return new ThreadedModel(worker, manifest);
    } catch (error) {
      detach();
      await worker.terminate();
      throw error;
    }
  }

  predict(image: Uint8Array, options: PredictOptions = {}): Promise<Prediction> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<Prediction>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: ModelThreadRequest = { type: 'predict', id, image, options };
      this.worker.postMessage(request);
    });
  }

  private failAll(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }

  /** Stops the thread; predictions still running are rejected. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.failAll(new Error('model disposed'));
    void this.worker.terminate();
  }
}
