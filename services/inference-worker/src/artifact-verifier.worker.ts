import { parentPort } from 'node:worker_threads';
import { initBackend, loadModel } from '@btd/model';
import { answerVerifyRequest, type VerifyRequest } from './artifact-verify-request.js';

/**
 * Verifies promoted artifacts on its own thread and backend (load, input shape, probe output), so
 * that the work stays off the thread that serves jobs.
 */
const port = parentPort;
if (!port) throw new Error('artifact-verifier.worker must run in a worker thread');
const ready = initBackend();
// A backend that fails to start is reported with each request, not as an unhandled rejection.
ready.catch(() => undefined);

port.on('message', (request: VerifyRequest) => {
  void answerVerifyRequest(request, ready, loadModel).then((reply) => port.postMessage(reply));
});
