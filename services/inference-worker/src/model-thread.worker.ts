import { parentPort } from 'node:worker_threads';
import { ImageDecodeError, initBackend, loadModel, type LoadedModel } from '@btd/model';
import type { ModelThreadReply, ModelThreadRequest } from './model-thread.js';

/** Serves one model on this thread: one load, then predictions in the order they arrive. */
const port = parentPort;
if (!port) throw new Error('model-thread.worker must run in a worker thread');
let model: Promise<LoadedModel> | undefined;

const post = (reply: ModelThreadReply) => port.postMessage(reply);
const failure = (error: unknown, id?: number): ModelThreadReply => ({
  type: 'error',
  ...(id === undefined ? {} : { id }),
  message: (error as Error).message,
  decode: error instanceof ImageDecodeError,
});

port.on('message', (request: ModelThreadRequest) => {
  void (async () => {
    if (request.type === 'load') {
      model = initBackend(request.backend ? { prefer: request.backend } : {}).then(() => loadModel(request.files));
      try {
        post({ type: 'loaded', manifest: (await model).manifest });
      } catch (error) {
        post(failure(error));
      }
      return;
    }
    try {
      if (!model) throw new Error('no model loaded');
      post({ type: 'prediction', id: request.id, prediction: await (await model).predict(request.image, request.options) });
    } catch (error) {
      post(failure(error, request.id));
    }
  })();
});
