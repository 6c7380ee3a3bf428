import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { ErrorBody } from '@btd/api';
import { call } from './api-client.js';
import { useApiHarness } from './api-harness.js';

const harness = useApiHarness();

describe('a path the router cannot take', () => {
  it.each([
    ['an id of 300 characters', `/v1/studies/${'s'.repeat(300)}`, 'longer than 200 characters'],
    ['a broken percent-encoding', '/v1/studies/stu_%zz', 'each % must be followed by two hexadecimal digits'],
    ['an id of 150 characters', `/v1/batches/${'b'.repeat(150)}`, 'params/id must match pattern'],
  ])('is refused as any bad request is, with the API code and shape: %s', async (_name, path, mentions) => {
    const answer = await call<ErrorBody>(harness.env, 'alice', 'GET', path);
    expect(answer.status).toBe(400);
    expect(Object.keys(answer.body).sort()).toEqual(['code', 'error', 'message', 'statusCode']);
    expect(answer.body).toMatchObject({ statusCode: 400, error: 'Bad Request', code: 'invalid_request' });
    expect(answer.body.message).toContain(mentions);
    expect(answer.body.message).not.toContain('sss');
  });
});

/** Writes `raw` on a connection of its own and reads the answer until the API closes it: its status and JSON body. */
async function rawAnswer(raw: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(harness.env.url);
  const socket = connect(Number(url.port), url.hostname);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.write(raw);
  await new Promise((resolve) => socket.on('close', resolve));
  const text = Buffer.concat(chunks).toString();
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown> };
}

describe('a request Node refuses before the API sees it', () => {
  it('is answered in the shape of every other refusal, with a code', async () => {
    const headers = await rawAnswer(`GET /v1/studies HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(headers).toMatchObject({ status: 431, body: { statusCode: 431, code: 'headers_too_large' } });
    expect(headers.body.message).toMatch(/larger than the \d+ bytes the server reads/);
    const garbage = await rawAnswer('NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatchObject({ status: 400, body: { statusCode: 400, error: 'Bad Request', code: 'malformed_request' } });
  });
});
