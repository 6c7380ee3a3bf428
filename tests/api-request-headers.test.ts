import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { BatchView, ErrorBody } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { studyForm } from './api-client.js';
import { useApiHarness } from './api-harness.js';

const harness = useApiHarness();

const [slice] = mriSlices('yes', 1);

/**
 * Sends a request with `headers` as they are given: a list is sent as one header line per value
 * (fetch would join the values into one line), and parses the JSON answer.
 */
async function send(method: string, path: string, headers: Record<string, string | string[]>, body?: Uint8Array | string) {
  return new Promise<{ status: number; body: ErrorBody & BatchView }>((resolve, reject) => {
    const sent = request(new URL(path, harness.env.url), { method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as ErrorBody & BatchView }));
    });
    sent.on('error', reject);
    sent.end(body);
  });
}

/** The bytes and Content-Type of a study form holding one slice, as fetch would send them. */
async function encodedStudy(): Promise<{ type: string; bytes: Uint8Array }> {
  const encoded = new Request('http://localhost/', { method: 'POST', body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]) });
  return { type: encoded.headers.get('content-type')!, bytes: new Uint8Array(await encoded.arrayBuffer()) };
}

const bearer = (client: 'alice' | 'bob') => harness.env.auth(client).authorization;

describe('a header that a request may carry once', () => {
  it('is refused when sent twice as Authorization, whichever keys the two hold, before an upload is read', async () => {
    for (const authorization of [[bearer('alice'), bearer('bob')], [bearer('alice'), 'Bearer not-a-real-key-at-all'], [bearer('alice'), bearer('alice')]]) {
      const answer = await send('GET', '/v1/studies', { authorization });
      expect([answer.status, answer.body.code], authorization.join(' | ')).toEqual([400, 'duplicate_header']);
      expect(answer.body.message).toContain('Authorization');
    }
    const study = await encodedStudy();
    const upload = await send('POST', '/v1/studies', { authorization: [bearer('alice'), bearer('bob')], 'content-type': study.type }, study.bytes);
    expect([upload.status, upload.body.code]).toEqual([400, 'duplicate_header']);
    expect(await harness.env.objectKeys()).toEqual([]);
    const single = await send('POST', '/v1/studies', { authorization: bearer('alice'), 'content-type': study.type }, study.bytes);
    expect(single.status).toBe(202);
  });

  it('is refused when sent twice as Idempotency-Key, which Node would join into one key "a, b"', async () => {
    const [first, second] = [randomUUID(), randomUUID()];
    const json = { authorization: bearer('alice'), 'content-type': 'application/json' };
    const twice = await send('POST', '/v1/batches', { ...json, 'idempotency-key': [first, second] }, '{}');
    expect([twice.status, twice.body.code]).toEqual([400, 'duplicate_header']);
    expect(twice.body.message).toContain('Idempotency-Key');
    const joined = await send('POST', '/v1/batches', { ...json, 'idempotency-key': `${first}, ${second}` }, '{}');
    expect(joined.status).toBe(201);
    const once = await send('POST', '/v1/batches', { ...json, 'idempotency-key': first }, '{}');
    const retried = await send('POST', '/v1/batches', { ...json, 'idempotency-key': first }, '{}');
    expect([once.status, retried.status, retried.body.batchId]).toEqual([201, 201, once.body.batchId]);
    expect(once.body.batchId).not.toBe(joined.body.batchId);
  });

  it('is refused when sent twice as Content-Type, which leaves the body to be read one way or the other', async () => {
    const answer = await send('POST', '/v1/batches', { authorization: bearer('alice'), 'content-type': ['application/json', 'text/plain'] }, '{}');
    expect([answer.status, answer.body.code]).toEqual([400, 'duplicate_header']);
    expect(answer.body.message).toContain('Content-Type');
  });
});

describe('a JSON body holding a key that would reach an object prototype', () => {
  it.each([
    ['__proto__ at the top', '/v1/batches', 'alice', '{"__proto__": {"x": 1}, "externalId": "NIGHT-1"}', '__proto__'],
    ['__proto__ nested', '/v1/trainings', 'ops', '{"task": "tumor-binary", "hyperParameters": {"__proto__": {"epochs": 2}}}', '__proto__'],
    ['constructor.prototype', '/v1/batches', 'alice', '{"externalId": "NIGHT-1", "constructor": {"prototype": {"x": 1}}}', 'constructor.prototype'],
  ] as const)('is refused as such, not as invalid JSON: %s', async (_name, path, client, body, key) => {
    const answer = await send('POST', path, { ...harness.env.auth(client), 'content-type': 'application/json' }, body);
    expect([answer.status, answer.body.code]).toEqual([400, 'forbidden_json_key']);
    expect(answer.body.message).toContain(`"${key}"`);
    expect(answer.body.message).not.toContain('not valid JSON');
  });

  it('leaves a malformed body refused as invalid JSON, and a "constructor" field without "prototype" to the schema', async () => {
    const json = { ...harness.env.auth('alice'), 'content-type': 'application/json' };
    const malformed = await send('POST', '/v1/batches', json, '{"__proto__": {"x": 1}, "externalId": ');
    expect([malformed.status, malformed.body.code, malformed.body.message]).toEqual([400, 'invalid_request', 'the body is not valid JSON']);
    const constructor = await send('POST', '/v1/batches', json, '{"constructor": {"name": "x"}}');
    expect([constructor.status, constructor.body.code]).toEqual([400, 'invalid_request']);
    expect(constructor.body.message).toContain('constructor');
  });
});
