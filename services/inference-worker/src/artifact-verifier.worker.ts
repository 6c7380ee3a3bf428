import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, loadModel } from '@btd/model';
import type { VerifierThreadData } from './artifact-verifier-thread.js';
import { answerVerifyRequest, type VerifyRequest } from './artifact-verify-request.js';

/**
 * Verifies promoted artifacts on its own thread (load, input shape, probe output), on the backend
 * the models are served on, so that the work stays off the thread that serves jobs.
 */
const port = parentPort;
if (!port) throw new Error('artifact-verifier.worker must run in a worker thread');
const { backend } = (workerData ?? {}) as VerifierThreadData;
const ready = initBackend(backend ? { prefer: backend } : {});
// A backend that fails to start is reported with each request, not as an unhandled rejection.
ready.catch(() => undefined);

port.on('message', (request: VerifyRequest) => {
  void answerVerifyRequest(request, ready, loadModel).then((reply) => port.postMessage(reply));
});
