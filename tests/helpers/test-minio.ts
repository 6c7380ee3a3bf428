import { MinioContainer } from '@testcontainers/minio';
import { getContainerRuntimeClient } from 'testcontainers';
import { CONTAINER_IMAGES } from './test-containers.js';
import { freePort } from './free-port.js';
import type { TestS3Server } from './test-s3.js';
import { waitFor } from './wait-for.js';

const MINIO_PORT = 9000;
const CREDENTIALS = { accessKeyId: 'btd-test', secretAccessKey: 'btd-test-secret' };

/**
 * A MinIO container for one test file. Its S3 port is bound to a fixed host port, so that after
 * `stop()` (the container is kept, with its objects) `restart()` answers on the same endpoint.
 */
export async function startTestMinio(): Promise<TestS3Server> {
  const port = await freePort();
  const started = await new MinioContainer(CONTAINER_IMAGES.minio)
    .withExposedPorts({ container: MINIO_PORT, host: port })
    .withUsername(CREDENTIALS.accessKeyId)
    .withPassword(CREDENTIALS.secretAccessKey)
    .start();
  const endpoint = `http://${started.getHost()}:${port}`;
  const client = await getContainerRuntimeClient();
  const container = client.container.getById(started.getId());
  return {
    endpoint,
    credentials: CREDENTIALS,
    stop: () => client.container.stop(container, { timeout: 0 }),
    async restart() {
      await client.container.start(container);
      const live = async (): Promise<boolean> => (await fetch(`${endpoint}/minio/health/live`).catch(() => undefined))?.ok === true;
      await waitFor(live, { timeoutMs: 30_000, what: `MinIO at ${endpoint}` });
    },
    async remove() {
      await started.stop();
    },
  };
}
