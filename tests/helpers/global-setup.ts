import { RedisContainer, type StartedRedisContainer } from '@testcontainers/redis';
import type { TestProject } from 'vitest/node';
import { CONTAINER_IMAGES, requireContainerRuntime, testContainersWanted } from './test-containers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Redis the tests run against. */
    testRedisUrl: string;
    /** Whether each test file's S3 is a MinIO container rather than an s3rver. */
    testContainers: boolean;
  }
}

/**
 * Chooses the Redis and S3 the suite runs against. By default: the machine's Redis (`REDIS_URL`,
 * else 127.0.0.1:6379) and an s3rver per test file. With `TEST_CONTAINERS=true`: one Redis
 * container for the run and a MinIO container per test file.
 *
 * The container keeps an append-only file, as deployed, but fsyncs it every second where Compose
 * fsyncs before each answer (`always`): no test kills this Redis or its host, so the policy changes
 * nothing a test sees, only how long each write waits. A test that kills Redis and needs its writes
 * back runs a redis-server of its own, fsynced always (tests/api-outages.test.ts).
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const containers = testContainersWanted();
  project.provide('testContainers', containers);
  if (!containers) {
    project.provide('testRedisUrl', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    return undefined;
  }
  await requireContainerRuntime();
  const redis: StartedRedisContainer = await new RedisContainer(CONTAINER_IMAGES.redis).withCommand(['redis-server', '--appendonly', 'yes', '--appendfsync', 'everysec']).start();
  project.provide('testRedisUrl', redis.getConnectionUrl());
  return async () => {
    await redis.stop();
  };
}
