import { getContainerRuntimeClient } from 'testcontainers';
import { describe, expect, inject, it } from 'vitest';
import { Redis } from '@btd/shared';
import { TEST_REDIS_URL, requireContainerRuntime, testContainersWanted } from './helpers/index.js';

const engineAnswers = await getContainerRuntimeClient().then(
  () => true,
  () => false,
);

describe('choosing local services or containers for the suite', () => {
  it('reads TEST_CONTAINERS as a boolean and rejects anything else', () => {
    expect(testContainersWanted(undefined)).toBe(false);
    expect(testContainersWanted('')).toBe(false);
    expect(testContainersWanted('false')).toBe(false);
    expect(testContainersWanted('0')).toBe(false);
    expect(testContainersWanted('true')).toBe(true);
    expect(testContainersWanted('1')).toBe(true);
    expect(() => testContainersWanted('yes')).toThrow('TEST_CONTAINERS must be true or false, got "yes"');
  });

  it('hands every test file the Redis the global setup chose, and it answers', async () => {
    expect(inject('testContainers')).toBe(testContainersWanted());
    if (!inject('testContainers')) expect(TEST_REDIS_URL).toBe(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
  });

  it.skipIf(engineAnswers)('says what to do when containers are asked for and no Docker engine answers', async () => {
    const failure = await requireContainerRuntime().then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).toMatch(/^TEST_CONTAINERS=true runs the tests against containers, but no Docker engine answered \(Could not find a working container runtime strategy\)/);
    expect(failure?.message).toContain('unset TEST_CONTAINERS to use the local Redis and s3rver');
  });
});
