import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ObjectReadInterruptedError } from './object-read-interrupted.error.js';
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

/** An S3 endpoint that answers every read and sends part of the body, then resets or falls silent. */
async function breakingOff(how: 'reset' | 'silent'): Promise<number> {
  return listening(
    createHttpServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'image/png', 'content-length': '100000' });
      response.write(Buffer.alloc(10));
      if (how === 'reset') setTimeout(() => response.socket?.destroy(), 20);
    }),
  );
}

/** What reading an object from a store on `port` throws, cancelled by `signal` when given. */
async function readError(port: number, signal?: AbortSignal): Promise<unknown> {
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
    await store.get('key', signal ? { signal } : {});
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

  it('takes an object whose body S3 resets or falls silent in for an outage, keeping the cause', async () => {
    for (const how of ['reset', 'silent'] as const) {
      const error = await readError(await breakingOff(how));
      expect(isStoreUnavailable(error), how).toBe(true);
      expect(error, how).toBeInstanceOf(ObjectReadInterruptedError);
      expect((error as Error).cause, how).toBeInstanceOf(Error);
    }
  });

  it('does not take a read its caller cancels mid-body for an outage', async () => {
    const error = await readError(await breakingOff('silent'), AbortSignal.timeout(100));
    expect(isStoreUnavailable(error)).toBe(false);
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
