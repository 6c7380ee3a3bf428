import { parentPort } from 'node:worker_threads';
import { ImageDecodeError, initBackend, loadModel, type BackendInfo, type ServingModel } from '@btd/model';
import type { ModelThreadReply, ModelThreadRequest } from './model-thread-pool.js';

/** A thread of the model pool: holds the models loaded on it and runs requests in the order they arrive. */
const port = parentPort;
if (!port) throw new Error('model-thread.worker must run in a worker thread');
const models = new Map<number, Promise<ServingModel>>();

const post = (reply: ModelThreadReply) => port.postMessage(reply);
const failure = (error: unknown, id: number): ModelThreadReply => ({
  type: 'error',
  id,
  message: (error as Error).message,
  decode: error instanceof ImageDecodeError,
  unsupported: error instanceof ImageDecodeError && error.unsupported,
});

async function answer(request: Exclude<ModelThreadRequest, { type: 'unload' | 'close' }>): Promise<ModelThreadReply> {
  if (request.type === 'load') {
    const backend: Promise<BackendInfo> = initBackend(request.backend ? { prefer: request.backend } : {});
    const loading = backend.then(() => loadModel(request.files));
    models.set(request.model, loading);
    loading.catch(() => models.delete(request.model));
    const loaded = await loading;
    return { type: 'loaded', id: request.id, manifest: loaded.manifest, plan: loaded.forwardPass.plan, backend: await backend };
  }
  const model = models.get(request.model);
  if (!model) throw new Error(`model ${request.model} is not loaded on this thread`);
  const loaded = await model;
  if (request.type === 'predict') return { type: 'prediction', id: request.id, prediction: await loaded.predict(request.image, request.options) };
  const { pixels, count, pieces } = request;
  return { type: 'pieces', id: request.id, results: pieces.map((piece) => loaded.forwardPass.runPiece(pixels, count, piece)) };
}

port.on('message', (request: ModelThreadRequest) => {
  // Requests before this one have been run (each runs to its end before the next message).
  if (request.type === 'close') process.exit(0);
  if (request.type === 'unload') {
    const model = models.get(request.model);
    models.delete(request.model);
    void model?.then((loaded) => loaded.dispose(), () => {});
    return;
  }
  answer(request).then(post, (error: unknown) => post(failure(error, request.id)));
});
