import type { Logger } from 'pino';

/**
 * Order of shutdown steps: stop taking work, let work in flight finish, close connections,
 * then free memory. Steps with the same phase run in registration order.
 */
export const SHUTDOWN_PHASE = Object.freeze({ intake: 10, drain: 20, connections: 30, resources: 40 });

interface Step {
  name: string;
  phase: number;
  run: () => unknown;
}

/** Options of {@link Shutdown}. */
export interface ShutdownOptions {
  logger: Logger;
  /** Hard limit for all steps together; after it the process exits with code 1. */
  timeoutMs: number;
  /** Called with the exit code once the steps are done (default `process.exit`). */
  exit?: (code: number) => void;
}

/**
 * Runs registered clean-up steps in phase order, once, under a hard timeout. A failing step
 * is logged and the next one still runs, so one broken connection does not leave others open.
 */
export class Shutdown {
  private readonly steps: Step[] = [];
  private running: Promise<number> | undefined;

  constructor(private readonly options: ShutdownOptions) {}

  /** Registers a step; see {@link SHUTDOWN_PHASE} for the phases. */
  add(name: string, phase: number, run: () => unknown): this {
    this.steps.push({ name, phase, run });
    return this;
  }

  /** Whether shutdown has begun. */
  get started(): boolean {
    return this.running !== undefined;
  }

  /**
   * Runs every step; later calls return the same promise. Resolves with 0 when all steps
   * succeeded in time, 1 otherwise.
   */
  run(reason: string): Promise<number> {
    this.running ??= this.runSteps(reason);
    return this.running;
  }

  /** Runs {@link run} on the given signals, then exits. A second signal exits at once. */
  listen(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): void {
    const exit = this.options.exit ?? ((code: number) => process.exit(code));
    for (const signal of signals) {
      process.on(signal, () => {
        if (this.started) {
          this.options.logger.warn({ signal }, 'second signal: exiting without waiting');
          exit(1);
          return;
        }
        void this.run(signal).then(exit);
      });
    }
  }

  private async runSteps(reason: string): Promise<number> {
    const { logger, timeoutMs } = this.options;
    logger.info({ reason, timeoutMs }, 'shutting down');
    const ordered = [...this.steps].sort((a, b) => a.phase - b.phase);
    let current = 'none';
    let failed = false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref();
    });
    const all = (async () => {
      for (const step of ordered) {
        current = step.name;
        try {
          await step.run();
        } catch (error) {
          failed = true;
          logger.error({ err: error, step: step.name }, 'shutdown step failed');
        }
      }
    })();
    const outcome = await Promise.race([all.then(() => 'done' as const), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      logger.error({ step: current, timeoutMs }, 'shutdown timed out');
      return 1;
    }
    logger.info('shutdown complete');
    return failed ? 1 : 0;
  }
}

/**
 * Wraps an async clean-up function so that it runs once; every later call returns the first
 * call's promise. Use it to make `close()` methods idempotent.
 */
export function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= fn());
}
