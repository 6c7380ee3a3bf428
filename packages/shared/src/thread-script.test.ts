import { describe, expect, it } from 'vitest';
import { threadScript } from './thread-script.js';

describe('threadScript', () => {
  it('finds a worker script beside a compiled module, and in dist/ for a module run from src/', () => {
    expect(threadScript('file:///app/services/api/dist/intake/check.js', 'check.worker').href).toBe('file:///app/services/api/dist/intake/check.worker.js');
    expect(threadScript('file:///app/services/api/src/intake/check.ts', 'check.worker').href).toBe('file:///app/services/api/dist/intake/check.worker.js');
    expect(threadScript('file:///src/app/services/worker/src/pool.ts', 'thread').href).toBe('file:///src/app/services/worker/dist/thread.js');
  });
});
