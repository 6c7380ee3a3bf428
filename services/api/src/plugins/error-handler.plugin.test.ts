import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { ObjectStore } from '@btd/shared';
import { errorHandlerPlugin } from './error-handler.plugin.js';

const servers: Server[] = [];

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** An S3 endpoint that starts every object's body and then resets its connection. */
async function resettingS3(): Promise<string> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'image/png', 'content-length': '100000' });
    response.write(Buffer.alloc(10));
    setTimeout(() => response.socket?.destroy(), 20);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the error handler', () => {
  it('answers a request that arrived whole, whose object S3 cut short, as a service to retry, not as request_aborted', async () => {
    const store = new ObjectStore({
      s3Endpoint: await resettingS3(),
      s3Bucket: 'b',
      s3Region: 'us-east-1',
      s3AccessKeyId: 'k',
      s3SecretAccessKey: 's',
      s3ForcePathStyle: true,
      s3TimeoutMs: 2000,
    });
    const app = Fastify();
    await app.register(errorHandlerPlugin);
    app.get('/overlay.png', async () => store.get('overlay.png'));
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const answer = await fetch(`${url}/overlay.png`);
      const { code } = (await answer.json()) as { code: string };
      expect(code).not.toBe('request_aborted');
      expect([answer.status, answer.headers.has('retry-after')]).toEqual([503, true]);
    } finally {
      await app.close();
      store.close();
    }
  });
});
