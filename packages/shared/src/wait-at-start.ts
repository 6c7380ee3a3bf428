import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from './logger.js';

/** How a service waits, while it starts, for a server it needs (S3, Redis). */
export interface StartWaitOptions {
  logger: Logger;
  /** Aborted when the service is stopped while it waits: the wait then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A server a service waits for at start-up, and how it waits. */
export interface StartDependency {
  /** Its name in the log: `S3`, `Redis`. */
  readonly name: string;
  /** Whether an error says the server is not there yet; any other error is the step's own and is thrown at once. */
  isUnavailable(error: unknown): boolean;
  /** Wait before the second try; each later wait doubles the last, up to `maxDelayMs`. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
  /** Gives up once the wait has lasted this long, throwing the last error (default: waits for as long as it takes). */
  readonly giveUpAfterMs?: number;
}

/**
 * Runs one start-up step that needs a server until it gets through, trying again with exponential
 * backoff while the server is unavailable: services that Docker Compose or Kubernetes start together
 * with their servers may be up before them, and a service that gave up would need its supervisor to
 * bring it back.
 *
 * Logs `<name> unreachable at start-up; waiting for it` for each failed try (at error for the first,
 * at warn for later ones, so at most one line per try however long the wait), and `<name> reachable;
 * start-up goes on` once it gets through after waiting.
 *
 * @param step what the step does, for the log (`bucket`, `evaluation sets`, `connection`)
 */
export async function waitAtStart<T>(dependency: StartDependency, step: string, attempt: () => Promise<T>, options: StartWaitOptions): Promise<T> {
  const { logger, signal } = options;
  const { name, firstDelayMs, maxDelayMs, giveUpAfterMs = Number.POSITIVE_INFINITY } = dependency;
  const started = Date.now();
  for (let tries = 1; ; tries += 1) {
    try {
      signal?.throwIfAborted();
      const result = await attempt();
      // Stopped during the try: the start-up must not go on under a shutdown.
      signal?.throwIfAborted();
      if (tries > 1) logger.info({ step, tries, waitedMs: Date.now() - started }, `${name} reachable; start-up goes on`);
      return result;
    } catch (error) {
      if (signal?.aborted || !dependency.isUnavailable(error)) throw error;
      const waitingForMs = Date.now() - started;
      const leftMs = giveUpAfterMs - waitingForMs;
      if (leftMs <= 0) throw error;
      const retryInMs = Math.min(maxDelayMs, firstDelayMs * 2 ** Math.min(tries - 1, 20), leftMs);
      const context = { err: error, step, tries, waitingForMs, retryInMs };
      logger[tries === 1 ? 'error' : 'warn'](context, `${name} unreachable at start-up; waiting for it`);
      await sleep(retryInMs, undefined, signal ? { signal } : {}).catch((aborted: unknown) => {
        signal?.throwIfAborted();
        throw aborted;
      });
    }
  }
}
