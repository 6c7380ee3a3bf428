import type { TrainingView } from './training-api.client.js';

/** A followed training ended in the `failed` state: its retries are spent. */
export class TrainingFailedError extends Error {
  readonly trainingId: string;

  constructor(view: TrainingView) {
    super(`training ${view.id} failed after ${view.attempts} attempt(s): ${view.failedReason ?? 'no reason recorded'}`);
    this.name = 'TrainingFailedError';
    this.trainingId = view.id;
  }
}
