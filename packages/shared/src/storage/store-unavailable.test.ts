import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ObjectStore } from './object-store.js';
import { isStoreUnavailable } from './store-unavailable.js';

const servers: (HttpServer | TcpServer)[] = [];
const sockets = new Set<Socket>();

afterAll(async () => {
  // The silent server never ends its sockets, and `close()` waits for them.
  for (const socket of sockets) socket.destroy();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
});

async function listening(server: HttpServer | TcpServer): Promise<number> {
  servers.push(server);
  server.on('connection', (socket: Socket) => sockets.add(socket.once('close', () => sockets.delete(socket))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** An S3 endpoint that answers every request with `status` and an S3 error document naming `code`. */
async function answering(status: number, code: string): Promise<number> {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`;
  return listening(createHttpServer((_request, response) => response.writeHead(status, { 'content-type': 'application/xml' }).end(body)));
}

/** What reading an object from a store on `port` throws. */
async function readError(port: number): Promise<unknown> {
  const store = new ObjectStore({
    s3Endpoint: `http://127.0.0.1:${port}`,
    s3Bucket: 'b',
    s3Region: 'us-east-1',
    s3AccessKeyId: 'k',
    s3SecretAccessKey: 's',
    s3ForcePathStyle: true,
    s3TimeoutMs: 200,
  });
  try {
    await store.get('key');
  } catch (error) {
    return error;
  } finally {
    store.close();
  }
  throw new Error('the read succeeded');
}

async function closedPort(): Promise<number> {
  const server = createTcpServer();
  const port = await listening(server);
  servers.splice(servers.indexOf(server), 1);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('isStoreUnavailable', () => {
  it('takes refused, reset and silent connections for an outage', async () => {
    const reset = await listening(createTcpServer((socket) => socket.destroy()));
    const silent = await listening(createTcpServer(() => {}));
    for (const port of [await closedPort(), reset, silent]) expect(isStoreUnavailable(await readError(port))).toBe(true);
  });

  it('takes 5xx answers, throttling and request time-outs for an outage', async () => {
    const answers = [
      [500, 'InternalError'],
      [503, 'SlowDown'],
      [429, 'TooManyRequests'],
      [400, 'RequestTimeout'],
    ] as const;
    for (const [status, code] of answers) expect(isStoreUnavailable(await readError(await answering(status, code))), code).toBe(true);
  });

  it('does not take a missing object, a refused request or a bad one for an outage', async () => {
    const answers = [
      [404, 'NoSuchKey'],
      [403, 'AccessDenied'],
      [400, 'InvalidArgument'],
    ] as const;
    for (const [status, code] of answers) expect(isStoreUnavailable(await readError(await answering(status, code))), code).toBe(false);
  });

  it('does not take errors from elsewhere for an S3 outage', () => {
    const redisDown = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    expect(isStoreUnavailable(redisDown)).toBe(false);
    expect(isStoreUnavailable('ECONNREFUSED')).toBe(false);
  });
});
