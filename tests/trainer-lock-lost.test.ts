import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { enqueueTraining, type TrainingJob } from '@btd/shared';
import { useRegistryEnv } from './registry-fixtures.js';
import { waitFor } from './helpers/index.js';
import { TINY_TRAINING, linkDataset, useTrainerTestBed } from './trainer-fixtures.js';

const env = useRegistryEnv();
const bed = useTrainerTestBed(env);

describe('a trainer whose lock on its training lapsed', () => {
  it('publishes and promotes nothing once another trainer holds the job, and leaves the job to it', async () => {
    const running = bed.start();
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'lapsed'), 10, 0);
    const request: TrainingJob = { task: 'tumor-binary', dataset: { kind: 'local', path: dataset }, hyperParameters: TINY_TRAINING, requestedBy: 'ops' };
    const job = await enqueueTraining(bed.queue, 'req-lapsed', request);
    const phases = () => (bed.progress.get(job.id!) ?? []).map((p) => p.phase);
    await waitFor(() => phases().includes('training'), { timeoutMs: 120_000, intervalMs: 20, what: 'the training to start' });

    // What the stall check and another trainer leave after this one's lock lapsed: the lock is the other's.
    const lock = `${env.prefix}:training:${job.id!}:lock`;
    await env.redis.set(lock, 'another-trainer', 'PX', 300_000);
    await waitFor(() => phases().includes('publishing'), { timeoutMs: 240_000, intervalMs: 20, what: 'the training to reach publishing' });
    // Closing waits for the job's processing to end.
    await running.close();

    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([]);
    expect(await env.registry.promoted('tumor-binary')).toBeNull();
    expect(await bed.queue.getJobState(job.id!)).toBe('active');
    expect(await env.redis.get(lock)).toBe('another-trainer');
  }, 300_000);
});
