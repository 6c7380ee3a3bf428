import { describe, expect, it } from 'vitest';
import type { ErrorBody } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call } from './api-client.js';
import { useApiHarness } from './api-harness.js';

const harness = useApiHarness();

const [slice] = mriSlices('yes', 1);

/** POSTs `body` as it is, with `contentType` (none when undefined), and parses the answer. */
async function post(path: string, contentType: string | undefined, body: Uint8Array | string) {
  const headers: Record<string, string> = { ...harness.env.auth('alice'), ...(contentType ? { 'content-type': contentType } : {}) };
  const response = await fetch(`${harness.env.url}${path}`, { method: 'POST', headers, body });
  return { status: response.status, body: (await response.json()) as ErrorBody };
}

describe('a body of a type the route does not take', () => {
  it.each([
    ['application/octet-stream', 'application/octet-stream'],
    ['image/jpeg', 'image/jpeg'],
    ['a form url-encoded', 'application/x-www-form-urlencoded'],
    ['no Content-Type', undefined],
  ])('is refused by a study upload as not multipart, saying what to send: %s', async (_name, contentType) => {
    const batch = await call<{ batchId: string }>(harness.env, 'alice', 'POST', '/v1/batches', { body: {} });
    for (const path of ['/v1/studies', `/v1/batches/${batch.body.batchId}/studies`]) {
      const answer = await post(path, contentType, slice!.bytes);
      expect([path, answer.status, answer.body.code]).toEqual([path, 415, 'not_multipart']);
      expect(answer.body.message).toContain('multipart/form-data');
    }
  });

  it('is refused by STOW-RS naming the type sent and the one it takes', async () => {
    const answer = await post('/v1/dicomweb/studies', 'application/dicom', slice!.bytes);
    expect([answer.status, answer.body.code]).toEqual([415, 'unsupported_media_type']);
    expect(answer.body.message).toContain('Content-Type "application/dicom"');
    expect(answer.body.message).toContain('multipart/related; type="application/dicom"');
  });

  it.each([
    ['a form url-encoded', 'application/x-www-form-urlencoded', 'externalId=NIGHT-1'],
    ['plain text', 'text/plain', 'externalId=NIGHT-1'],
    ['a multipart form', 'multipart/form-data; boundary=b', '--b\r\nContent-Disposition: form-data; name="externalId"\r\n\r\nNIGHT-1\r\n--b--\r\n'],
  ])('is refused by a JSON route naming the type sent and JSON: %s', async (_name, contentType, body) => {
    const answer = await post('/v1/batches', contentType, body);
    expect([answer.status, answer.body.code]).toEqual([415, 'unsupported_media_type']);
    expect(answer.body.message).toContain(`Content-Type ${JSON.stringify(contentType)}`);
    expect(answer.body.message).toContain('application/json');
  });
});

describe('a JSON body that cannot be read', () => {
  it('is refused with the API own codes: invalid JSON, an empty body, one over the limit', async () => {
    const invalid = await post('/v1/batches', 'application/json', '{"externalId": ');
    expect([invalid.status, invalid.body.code, invalid.body.message]).toEqual([400, 'invalid_request', 'the body is not valid JSON']);
    const empty = await post('/v1/batches', 'application/json', '');
    expect([empty.status, empty.body.code]).toEqual([400, 'invalid_request']);
    expect(empty.body.message).toContain('the body is empty');
    const large = await post('/v1/batches', 'application/json', JSON.stringify({ externalId: 'x'.repeat(2 << 20) }));
    expect([large.status, large.body.code]).toEqual([413, 'request_too_large']);
    expect(large.body.message).toContain('1048576 bytes');
  });
});
