import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useApiHarness } from './api-harness.js';

const MAX_SUBMISSION_BYTES = 500_000;

const harness = useApiHarness({ MAX_UPLOAD_BYTES: '200000', MAX_SUBMISSION_BYTES: String(MAX_SUBMISSION_BYTES) });

/**
 * Sends a request's headers announcing `contentLength` bytes and the first line of its body, then
 * nothing more, and reads what the API answers (the status line and the JSON body) until it closes.
 */
async function announce(path: string, contentType: string, contentLength: number): Promise<{ status: number; body: { code?: string; message?: string } }> {
  const url = new URL(harness.env.url);
  const socket = connect(Number(url.port), url.hostname);
  const head = [
    `POST ${path} HTTP/1.1`,
    `Host: ${url.host}`,
    `Authorization: ${harness.env.auth('alice').authorization}`,
    `Content-Type: ${contentType}`,
    `Content-Length: ${contentLength}`,
  ];
  socket.write(`${head.join('\r\n')}\r\n\r\n--b\r\n`);
  const chunks: Buffer[] = [];
  // No timer: a test runner's timeout ends a request that the API never answers.
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', resolve);
    socket.on('close', () => resolve());
    socket.on('error', (error) => (chunks.length > 0 ? resolve() : reject(error)));
  });
  const text = Buffer.concat(chunks).toString();
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  const bodyText = text.slice(text.indexOf('\r\n\r\n') + 4);
  return { status, body: JSON.parse(bodyText.slice(bodyText.indexOf('{'), bodyText.lastIndexOf('}') + 1)) as { code?: string; message?: string } };
}

describe('an upload that announces more bytes than a request may hold', () => {
  it('is refused with 413 before its body is read, by a study, a batch chunk and STOW-RS', async () => {
    const { env } = harness;
    const batch = await fetch(`${env.url}/v1/batches`, { method: 'POST', headers: { ...env.auth('alice'), 'content-type': 'application/json' }, body: '{}' });
    const { batchId } = (await batch.json()) as { batchId: string };
    const routes: [string, string][] = [
      ['/v1/studies', 'multipart/form-data; boundary=b'],
      [`/v1/batches/${batchId}/studies`, 'multipart/form-data; boundary=b'],
      ['/v1/dicomweb/studies', 'multipart/related; type="application/dicom"; boundary=b'],
    ];
    for (const [path, contentType] of routes) {
      const answer = await announce(path, contentType, 100_000_000_000);
      expect([path, answer.status, answer.body.code]).toEqual([path, 413, 'request_too_large']);
      expect(answer.body.message).toContain('100000000000 bytes');
      expect(answer.body.message).toContain(`${MAX_SUBMISSION_BYTES} bytes, MAX_SUBMISSION_BYTES`);
    }
    expect(env.api.ctx.uploadMemory.heldBytes).toBe(0);
    expect(await env.objectKeys()).toEqual([]);
  }, 60_000);
});
