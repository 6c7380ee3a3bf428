import { ConfigError } from '@btd/shared';
import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from './config.js';

/** The env names a configuration is refused for. */
function refusedKeys(env: Record<string, string>): string[] {
  try {
    loadWorkerConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map((issue) => issue.env).sort();
  }
  return [];
}

describe('loadWorkerConfig', () => {
  it('has working defaults for a local run', () => {
    const config = loadWorkerConfig({});
    expect(config).toMatchObject({ concurrency: 2, modelSource: 'registry', queuePrefix: 'btd', metricsPort: 0, lockDurationMs: 60_000, modelsDir: 'models' });
    expect(config).toMatchObject({ s3OutageBudgetMs: 3_600_000, s3OutageMaxDelayMs: 30_000 });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('lists every bad setting at once', () => {
    const bad = { WORKER_CONCURRENCY: '0', MODEL_SOURCE: 'ftp', TF_BACKEND: 'gpu', WORKER_LOCK_DURATION_MS: 'soon' };
    expect(refusedKeys(bad)).toEqual(Object.keys(bad).sort());
  });

  it("refuses durations longer than Node's timers honour, which would fire after 1 ms", () => {
    const long = { SHUTDOWN_TIMEOUT_MS: '3000000000', MODEL_POLL_INTERVAL_MS: '2147483648', WORKER_LOCK_DURATION_MS: '4000000000', WORKER_STALLED_INTERVAL_MS: '9999999999' };
    expect(refusedKeys(long)).toEqual(Object.keys(long).sort());
    expect(loadWorkerConfig({ SHUTDOWN_TIMEOUT_MS: '2147483647' }).shutdownTimeoutMs).toBe(2_147_483_647);
  });
});
