import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useApiHarness } from './api-harness.js';

const TIMEOUT_MS = 2000;

const harness = useApiHarness({ HTTP_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) });

/** Sends `head` on a new connection, then nothing; resolves with the server's first answer line once it closes the connection, or `open` after `capMs`. */
function stall(head: string, capMs: number): Promise<{ closedAfterMs?: number; answer: string }> {
  const { hostname, port } = new URL(harness.env.url);
  return new Promise((resolve) => {
    const started = Date.now();
    let answer = '';
    const socket = connect(Number(port), hostname, () => socket.write(head));
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ closedAfterMs: Date.now() - started, answer: answer.split('\r\n')[0] ?? '' }));
    setTimeout(() => {
      resolve({ answer: 'open' });
      socket.destroy();
    }, capMs);
  });
}

/**
 * Sends `request` on a new connection a few bytes every `everyMs`, its headers first and then its
 * body, never pausing long; resolves as {@link stall} does, timed from the request's first byte.
 */
function trickle(request: string, everyMs: number, capMs: number): Promise<{ closedAfterMs?: number; answer: string }> {
  const { hostname, port } = new URL(harness.env.url);
  return new Promise((resolve) => {
    let started = 0;
    let answer = '';
    let sent = 0;
    let ticker: NodeJS.Timeout | undefined;
    const socket = connect(Number(port), hostname, () => {
      started = Date.now();
      ticker = setInterval(() => {
        if (sent < request.length) socket.write(request.slice(sent, (sent += 8)));
      }, everyMs);
    });
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(ticker);
      resolve({ closedAfterMs: Date.now() - started, answer: answer.split('\r\n')[0] ?? '' });
    });
    setTimeout(() => {
      resolve({ answer: 'open' });
      socket.destroy();
    }, capMs);
  });
}

describe('clients that send slowly or stop halfway', () => {
  it('lose their connection HTTP_REQUEST_TIMEOUT_MS after the request began, however long its headers took', async () => {
    // Headers of 240 bytes, 8 every 50 ms: complete after some 1.5 s, most of the time allowed; the
    // body then trickles on. The deadline counts from the first byte, not from the end of the headers.
    const fields =
      `POST /v1/studies HTTP/1.1\r\nHost: btd\r\nAuthorization: Bearer ${harness.env.keys.alice}\r\n` +
      'Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n';
    const head = `${fields}X-Padding: ${'p'.repeat(240 - fields.length - 15)}\r\n\r\n`;
    expect(head.length).toBe(240);
    const upload = head + '--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n' + 'x'.repeat(10_000);
    const trickled = await trickle(upload, 50, 5 * TIMEOUT_MS);
    expect(trickled.answer).toBe('HTTP/1.1 408 Request Timeout');
    // Node checks the deadlines every quarter of the timeout.
    expect(trickled.closedAfterMs).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(trickled.closedAfterMs).toBeLessThan(TIMEOUT_MS * 1.5);
    expect(await harness.env.objectKeys()).toEqual([]);
  });

  it('lose their connection once HTTP_REQUEST_TIMEOUT_MS has passed without the whole request, headers or body', async () => {
    const upload =
      `POST /v1/studies HTTP/1.1\r\nHost: btd\r\nAuthorization: Bearer ${harness.env.keys.alice}\r\n` +
      'Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n';
    const [body, headers] = await Promise.all([stall(upload, 5 * TIMEOUT_MS), stall('GET /healthz HTTP/1.1\r\nHost: btd\r\n', 5 * TIMEOUT_MS)]);
    for (const stalled of [body, headers]) {
      expect(stalled.answer).toBe('HTTP/1.1 408 Request Timeout');
      expect(stalled.closedAfterMs).toBeGreaterThanOrEqual(TIMEOUT_MS);
    }
    expect(await harness.env.objectKeys()).toEqual([]);
  });
});
