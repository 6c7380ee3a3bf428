import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A key the proxy reports S3 refused to delete, with the code of the refusal (AccessDenied by default). */
export interface RefusedDelete {
  readonly key: string;
  readonly code?: string;
}

/**
 * An HTTP proxy in front of an S3 server that forwards every request as it is, and adds to the
 * answer of each DeleteObjects request (POST ?delete) an `<Error>` entry for every refused key the
 * request named: how AWS S3 and MinIO report a key they did not delete (AccessDenied under a bucket
 * policy) in an answer that is otherwise a 200. s3rver never answers so, hence the proxy.
 */
export interface DeleteRefusingProxy {
  readonly endpoint: string;
  /** The keys whose deletion is reported refused from now on (none at first). */
  refuse(refused: readonly RefusedDelete[]): void;
  close(): Promise<void>;
}

const escapeXml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const unescapeXml = (text: string): string => text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');

async function bodyOf(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Keys named by a DeleteObjects request body (`<Object><Key>…</Key></Object>`). */
const keysNamed = (body: string): string[] => [...body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => unescapeXml(match[1]!));

/** Starts a proxy to `target` (an `http://host:port` S3 endpoint); close it after the test. */
export async function startDeleteRefusingProxy(target: string): Promise<DeleteRefusingProxy> {
  const upstream = new URL(target);
  let refused: readonly RefusedDelete[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((incoming, outgoing) => {
    void (async () => {
      const requestBody = await bodyOf(incoming);
      const isDeleteObjects = incoming.method === 'POST' && new URL(incoming.url ?? '/', 'http://proxy').searchParams.has('delete');
      const forwarded = request({ host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers: incoming.headers });
      forwarded.on('error', (error) => outgoing.destroy(error));
      forwarded.on('response', (answer) => {
        void (async () => {
          let body = await bodyOf(answer);
          const named = isDeleteObjects && answer.statusCode === 200 ? new Set(keysNamed(requestBody.toString('utf8'))) : new Set<string>();
          const errors = refused.filter((entry) => named.has(entry.key));
          if (errors.length > 0) {
            const entries = errors.map(({ key, code = 'AccessDenied' }) => `<Error><Key>${escapeXml(key)}</Key><Code>${code}</Code><Message>${code}</Message></Error>`).join('');
            const text = body.toString('utf8');
            body = Buffer.from(/<\/DeleteResult>/.test(text) ? text.replace('</DeleteResult>', `${entries}</DeleteResult>`) : `<?xml version="1.0" encoding="UTF-8"?><DeleteResult>${entries}</DeleteResult>`);
          }
          const headers = { ...answer.headers, 'content-length': String(body.length) };
          delete headers['transfer-encoding'];
          outgoing.writeHead(answer.statusCode ?? 502, headers).end(body);
        })().catch((error: Error) => outgoing.destroy(error));
      });
      forwarded.end(requestBody);
    })().catch((error: Error) => outgoing.destroy(error));
  });
  server.on('connection', (socket: Socket) => sockets.add(socket.once('close', () => sockets.delete(socket))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    refuse(next) {
      refused = next;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
