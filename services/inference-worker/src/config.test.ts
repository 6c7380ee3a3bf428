import { ConfigError } from '@btd/shared';
import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from './config.js';

describe('loadWorkerConfig', () => {
  it('has working defaults for a local run', () => {
    const config = loadWorkerConfig({});
    expect(config).toMatchObject({ concurrency: 2, modelSource: 'registry', queuePrefix: 'btd', metricsPort: 0, lockDurationMs: 60_000, modelsDir: 'models' });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('lists every bad setting at once', () => {
    const bad = { WORKER_CONCURRENCY: '0', MODEL_SOURCE: 'ftp', TF_BACKEND: 'gpu', WORKER_LOCK_DURATION_MS: 'soon' };
    try {
      loadWorkerConfig(bad);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((issue) => issue.env).sort()).toEqual(Object.keys(bad).sort());
    }
  });
});
