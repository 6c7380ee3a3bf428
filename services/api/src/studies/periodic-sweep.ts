import { once } from '@btd/shared';

/** A sweep an API process runs on a timer. */
export interface PeriodicSweep {
  /** Stops the timer and waits for a sweep in progress (which stops at its next check of `stopped`); safe to call twice. */
  close(): Promise<void>;
}

export interface PeriodicSweepOptions {
  readonly firstDelayMs: number;
  /** From the end of one sweep to the start of the next. */
  readonly intervalMs: number;
  /** One sweep; `stopped()` turns true once the process shuts down. */
  readonly sweep: (stopped: () => boolean) => Promise<unknown>;
  /** Told about a sweep that failed; the next one runs as usual. */
  readonly failed: (error: unknown) => void;
}

/** Runs `sweep` after `firstDelayMs`, then `intervalMs` after each ends, on a timer that keeps no process alive. */
export function startPeriodicSweep(options: PeriodicSweepOptions): PeriodicSweep {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> = Promise.resolve();
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      sweeping = options
        .sweep(() => stopped)
        .then(() => undefined, options.failed)
        .finally(() => {
          if (!stopped) schedule(options.intervalMs);
        });
    }, delayMs).unref();
  };
  schedule(options.firstDelayMs);
  return {
    close: once(async () => {
      stopped = true;
      clearTimeout(timer);
      await sweeping;
    }),
  };
}
