import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** One request the receiver got. */
export interface ReceivedHook {
  headers: IncomingHttpHeaders;
  body: string;
  /** The body's bytes, for binary payloads. */
  raw: Buffer;
  path: string;
  receivedAt: number;
}

/** A local HTTP endpoint standing in for a client's webhook receiver. */
export interface WebhookReceiver {
  readonly url: string;
  readonly received: ReceivedHook[];
  /** Waits until `count` requests (matching `path`, if given) have arrived. */
  waitFor(count: number, path?: string, timeoutMs?: number): Promise<ReceivedHook[]>;
  close(): Promise<void>;
}

/** Starts a receiver answering each request with the next status of `statuses` (then 200), `replyAfterMs` after its body arrived. */
export async function startWebhookReceiver(statuses: number[] = [], replyAfterMs = 0): Promise<WebhookReceiver> {
  const received: ReceivedHook[] = [];
  const replies = [...statuses];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks);
      received.push({ headers: request.headers, body: raw.toString('utf8'), raw, path: request.url ?? '/', receivedAt: Date.now() });
      const status = replies.shift() ?? 200;
      setTimeout(() => response.writeHead(status).end(), replyAfterMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const matching = (path?: string) => received.filter((hook) => path === undefined || hook.path === path);
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    async waitFor(count, path, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (matching(path).length < count) {
        if (Date.now() > deadline) throw new Error(`got ${matching(path).length} of ${count} webhooks`);
        await sleep(50);
      }
      return matching(path);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
