import { parentPort } from 'node:worker_threads';
import { initBackend, loadModel } from '@btd/model';
import { ArtifactVerificationError, verifyArtifact } from '@btd/shared';
import type { VerifyReply, VerifyRequest } from './artifact-verifier-thread.js';

/**
 * Verifies promoted artifacts on its own thread and backend (load, input shape, probe output), so
 * that the work stays off the thread that serves jobs.
 */
const port = parentPort;
if (!port) throw new Error('artifact-verifier.worker must run in a worker thread');
const ready = initBackend();

port.on('message', (request: VerifyRequest) => {
  void (async () => {
    let reply: VerifyReply;
    try {
      await ready;
      const model = await verifyArtifact(request.files, {
        task: request.task,
        version: request.version,
        load: loadModel,
        ...(request.tolerance === undefined ? {} : { tolerance: request.tolerance }),
      });
      model.dispose();
      reply = { id: request.id, ok: true };
    } catch (error) {
      const reason = error instanceof ArtifactVerificationError ? error.reason : `verification failed: ${(error as Error).message}`;
      reply = { id: request.id, ok: false, reason };
    }
    port.postMessage(reply);
  })();
});
