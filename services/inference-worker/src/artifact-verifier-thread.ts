import { Worker } from 'node:worker_threads';
import { threadScript, type ArtifactFiles } from '@btd/shared';
import { verifyReplyError, type VerifyReply, type VerifyRequest } from './artifact-verify-request.js';
import type { Backend } from './model-thread-pool.js';

/** What the verifier thread is started with. */
export interface VerifierThreadData {
  /** The backend the models are served on (`TF_BACKEND`); unset, the same automatic choice as theirs. */
  backend?: Backend;
}

/**
 * A long-lived thread that verifies artifacts before the serving thread loads them. Verification
 * (a load and a probe prediction, a few hundred milliseconds of CPU) then runs on another core
 * instead of delaying the jobs; the serving thread only loads a version that passed.
 */
export class ArtifactVerifierThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (backend: string) => void; reject: (error: Error) => void; task: string; version: string }>();
  private nextId = 1;
  private failure: Error | undefined;

  /** `backend`: the one the models are served on, so that a version is probed where it will run. */
  constructor(backend?: Backend) {
    const workerData: VerifierThreadData = backend ? { backend } : {};
    this.worker = new Worker(threadScript(import.meta.url, 'artifact-verifier.worker'), { workerData });
    this.worker.on('message', (reply: VerifyReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiting.resolve(reply.backend);
      else waiting.reject(verifyReplyError(reply, waiting.task, waiting.version));
    });
    this.worker.on('error', (error) => this.failAll(error));
    this.worker.on('exit', (code) => this.failAll(new Error(`artifact verifier thread exited with code ${code}`)));
    // An idle verifier must not keep the process alive.
    this.worker.unref();
  }

  /**
   * Resolves with the backend the probe ran on when the artifact passed; rejects with an
   * `ArtifactVerificationError` when it did not, and with another error when the thread could not
   * verify it.
   */
  verify(task: string, version: string, files: ArtifactFiles, tolerance?: number): Promise<string> {
    const id = this.nextId++;
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<string>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, task, version });
      const request: VerifyRequest = { id, task, version, files, ...(tolerance === undefined ? {} : { tolerance }) };
      this.worker.postMessage(request);
    });
  }

  private failAll(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.failAll(new Error('artifact verifier closed'));
    await this.worker.terminate();
  }
}
