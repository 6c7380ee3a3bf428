import { getContainerRuntimeClient } from 'testcontainers';

/** Images the containers run: the ones `docker-compose.yml` deploys. */
export const CONTAINER_IMAGES = { redis: 'redis:7-alpine', minio: 'minio/minio:latest' } as const;

/**
 * Whether the suite runs against Redis and MinIO in containers (`TEST_CONTAINERS=true`, which
 * needs a Docker engine) instead of the machine's Redis and an s3rver per test file.
 */
export function testContainersWanted(value = process.env.TEST_CONTAINERS): boolean {
  if (value === undefined || value === '' || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new Error(`TEST_CONTAINERS must be true or false, got ${JSON.stringify(value)}`);
}

/** Fails with what to do when no Docker engine answers, before any container is asked for. */
export async function requireContainerRuntime(): Promise<void> {
  try {
    await getContainerRuntimeClient();
  } catch (error) {
    throw new Error(
      `TEST_CONTAINERS=true runs the tests against containers, but no Docker engine answered (${(error as Error).message}). ` +
        'Start one (or set DOCKER_HOST), or unset TEST_CONTAINERS to use the local Redis and s3rver.',
      { cause: error },
    );
  }
}
