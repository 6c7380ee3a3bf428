import { describe, expect, it } from 'vitest';
import { describeTraining } from './training-display.js';
import type { TrainingView } from './training-api.client.js';

const view = (state: string, progress: TrainingView['progress']): TrainingView => ({
  id: 'training-1',
  state,
  request: { task: 'tumor-binary', dataset: { kind: 'local', path: '/data/a/x' }, requestedBy: 'ops' },
  progress,
  attempts: 0,
  createdAt: '2026-12-01T00:00:00.000Z',
});

describe('a followed training', () => {
  it('says, while handed back, which trainers could not read its dataset folder and which it waits for', () => {
    const refusedBy = [{ trainer: 'host-b-12-ab', reason: 'dataset folder /data/a/x is outside the allowed roots' }];
    expect(describeTraining(view('delayed', { phase: 'preparing', datasetWait: { since: 1, refusedBy, waitingFor: ['host-a-34-cd'] } }))).toBe(
      'preparing (delayed: host-b-12-ab could not read the dataset folder; waiting for host-a-34-cd)',
    );
    expect(describeTraining(view('delayed', { phase: 'preparing', datasetWait: { since: 1, refusedBy, waitingFor: [], unreadableSince: 2 } }))).toBe(
      'preparing (delayed: host-b-12-ab could not read the dataset folder; no running trainer may read it, waiting for one that can)',
    );
    // Handed back for another reason (a shutdown), it says so as before.
    expect(describeTraining(view('delayed', { phase: 'training' }))).toBe('training (delayed)');
  });
});
