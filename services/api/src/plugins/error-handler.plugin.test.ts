import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { Type, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
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

/** An S3 endpoint that starts every object's body and then resets its connection or falls silent. */
async function breakingOffS3(how: 'reset' | 'silent'): Promise<string> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'image/png', 'content-length': '100000' });
    response.write(Buffer.alloc(10));
    if (how === 'reset') setTimeout(() => response.socket?.destroy(), 20);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the error handler', () => {
  it.each(['reset', 'silent'] as const)(
    'answers a request whose object S3 cut short (%s) as S3 unavailable, to retry, not as request_aborted',
    async (how) => {
      const store = new ObjectStore({
        s3Endpoint: await breakingOffS3(how),
        s3Bucket: 'b',
        s3Region: 'us-east-1',
        s3AccessKeyId: 'k',
        s3SecretAccessKey: 's',
        s3ForcePathStyle: true,
        s3TimeoutMs: 300,
      });
      const app = Fastify();
      await app.register(errorHandlerPlugin);
      app.get('/overlay.png', async () => store.get('overlay.png'));
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      try {
        const answer = await fetch(`${url}/overlay.png`);
        const { code } = (await answer.json()) as { code: string };
        expect([answer.status, code, answer.headers.has('retry-after')]).toEqual([503, 's3_unavailable', true]);
      } finally {
        await app.close();
        store.close();
      }
    },
  );

  it('names the values a union of constants takes, as it does those of an enum', async () => {
    const app = Fastify();
    app.setValidatorCompiler(TypeBoxValidatorCompiler);
    await app.register(errorHandlerPlugin);
    const task = Type.Union([Type.Literal('tumor-binary'), Type.Literal('tumor-type')]);
    const priority = Type.Enum(['stat', 'routine']);
    app.get('/models/:task', { schema: { params: Type.Object({ task }), querystring: Type.Object({ priority: Type.Optional(priority) }) } }, async () => ({}));
    try {
      const unknownTask = await app.inject({ method: 'GET', url: '/models/nope' });
      expect([unknownTask.statusCode, unknownTask.json()]).toMatchObject([400, { code: 'invalid_request', message: 'params/task must be one of: tumor-binary, tumor-type' }]);
      const unknownPriority = await app.inject({ method: 'GET', url: '/models/tumor-type?priority=urgent' });
      expect(unknownPriority.json()).toMatchObject({ message: 'querystring/priority must be one of: stat, routine' });
    } finally {
      await app.close();
    }
  });
});
