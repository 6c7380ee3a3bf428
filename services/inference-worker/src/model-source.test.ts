import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { modelThreadCount } from './model-source.js';

describe('model threads of a worker', () => {
  it('runs the models on one thread of their own unless WORKER_MODEL_THREADS asks for a pool', () => {
    expect(modelThreadCount({ modelThreads: false, modelThreadCount: 0 })).toBe(1);
    expect(modelThreadCount({ modelThreads: false, modelThreadCount: 4 })).toBe(1);
  });

  it('sizes the pool by WORKER_MODEL_THREAD_COUNT, or one thread per core when it is 0', () => {
    expect(modelThreadCount({ modelThreads: true, modelThreadCount: 3 })).toBe(3);
    expect(modelThreadCount({ modelThreads: true, modelThreadCount: 0 })).toBe(availableParallelism());
  });
});
