import { setTimeout as sleep } from 'node:timers/promises';
import type { TrainingApiClient, TrainingView } from './training-api.client.js';

/** How a training is followed. */
export interface FollowOptions {
  /** Pause between two polls. */
  readonly intervalMs: number;
  /**
   * How long the API may stay unreachable (restart, Redis outage) before following gives up;
   * only once it has answered: an API that never answers is a wrong address, reported at once.
   */
  readonly outageToleranceMs: number;
  /** Called with every answer, changed or not. */
  readonly onUpdate: (view: TrainingView) => void;
  /** Called when a poll failed but following goes on. */
  readonly onRetry?: (error: Error) => void;
  /** Stops following early (Ctrl-C); the promise then resolves with `undefined`. */
  readonly signal?: AbortSignal;
}

/** States after which a training changes no more. */
const FINAL_STATES = new Set(['completed', 'failed', 'cancelled']);

function isTransient(error: unknown): error is Error {
  return error instanceof Error && (error as { transient?: unknown }).transient === true;
}

/**
 * Polls a training until it completed or failed and returns its last view. Short outages of the
 * API are ridden out: a training runs for hours and outlives API restarts.
 */
export async function followTraining(client: TrainingApiClient, id: string, options: FollowOptions): Promise<TrainingView | undefined> {
  let answered = false;
  let failingSince: number | undefined;
  while (!options.signal?.aborted) {
    try {
      const view = await client.get(id);
      answered = true;
      failingSince = undefined;
      options.onUpdate(view);
      if (FINAL_STATES.has(view.state)) return view;
    } catch (error) {
      if (!answered || !isTransient(error)) throw error;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > options.outageToleranceMs) throw error;
      options.onRetry?.(error);
    }
    await sleep(options.intervalMs, undefined, { signal: options.signal }).catch(() => undefined);
  }
  return undefined;
}
