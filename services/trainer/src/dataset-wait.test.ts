import { describe, expect, it } from 'vitest';
import { createLogger, type TrainerDatasets, type TrainingJobHandle } from '@btd/shared';
import { DelayedError, UnrecoverableError } from 'bullmq';
import { DatasetFolderUnreadableError } from './dataset-source.js';
import { datasetWaitOf, handBackUnreadable } from './dataset-wait.js';
import { createProgressReporter } from './training-progress.js';

const log = createLogger({ name: 'dataset-wait-test', level: 'silent', pretty: false });

/** A training as the trainers take it in turn: its progress, and whether it was handed back. */
function training() {
  const job = {
    id: 'training-1',
    progress: {} as unknown,
    delayedUntil: undefined as number | undefined,
    updateProgress(progress: unknown) {
      job.progress = progress;
      return Promise.resolve();
    },
    moveToDelayed(timestamp: number) {
      job.delayedUntil = timestamp;
      return Promise.resolve();
    },
  };
  return job;
}

describe('a training whose dataset folder the trainer that took it cannot read', () => {
  it('fails once every running trainer refused it, however many run: none is waited for again', async () => {
    // 25 trainers, each publishing a root too large to list: any folder under it may be there.
    const names = Array.from({ length: 25 }, (_, index) => `trainer-${String(index).padStart(2, '0')}`);
    const live: TrainerDatasets[] = names.map((trainer) => ({ trainer, cwd: '/', roots: [{ path: '/data', folders: [], unlisted: [''] }] }));
    const job = training();
    const outcomes: unknown[] = [];
    for (const trainer of names) {
      const handle = job as unknown as TrainingJobHandle;
      const progress = createProgressReporter(handle, log);
      const error = new DatasetFolderUnreadableError('dataset folder /data/x does not exist');
      const readers = { trainer, live: () => Promise.resolve(live), waitMs: 0 };
      outcomes.push(await handBackUnreadable(readers, { job: handle, token: 'token', folder: '/data/x', error, earlier: datasetWaitOf(handle), progress, log }).catch((thrown: unknown) => thrown));
    }
    // Each but the last handed it back for the trainers that had not taken it yet.
    expect(outcomes.slice(0, -1).every((outcome) => outcome instanceof DelayedError)).toBe(true);
    expect(datasetWaitOf(job as unknown as TrainingJobHandle)?.waitingFor).toEqual(['trainer-24']);
    const last = outcomes.at(-1);
    expect(last).toBeInstanceOf(UnrecoverableError);
    for (const trainer of names) expect((last as Error).message).toContain(`trainer ${trainer}: dataset folder /data/x does not exist`);
  });
});
