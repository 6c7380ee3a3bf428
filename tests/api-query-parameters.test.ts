import { describe, expect, it } from 'vitest';
import type { ErrorBody } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { useApiHarness } from './api-harness.js';

const harness = useApiHarness();

const [slice] = mriSlices('yes', 1);

describe('query parameters of the lists', () => {
  it('refuses a misspelt filter of the study list, which would otherwise list every study', async () => {
    const { env } = harness;
    const submitted = await call(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { externalId: 'ACC-1' }) });
    expect(submitted.status).toBe(202);

    const misspelt = await call<ErrorBody>(env, 'alice', 'GET', '/v1/studies?externalID=ACC-2');
    expect([misspelt.status, misspelt.body.code]).toEqual([400, 'invalid_request']);
    expect(misspelt.body.message).toContain('externalID');

    const filtered = await call<{ total: number }>(env, 'alice', 'GET', '/v1/studies?externalId=ACC-2');
    expect([filtered.status, filtered.body.total]).toEqual([200, 0]);
  });

  it('refuses an unknown parameter of a batch page', async () => {
    const { env } = harness;
    const batch = await call<{ batchId: string }>(env, 'alice', 'POST', '/v1/batches', { body: {} });
    const misspelt = await call<ErrorBody>(env, 'alice', 'GET', `/v1/batches/${batch.body.batchId}?limt=1`);
    expect([misspelt.status, misspelt.body.code]).toEqual([400, 'invalid_request']);
    expect(misspelt.body.message).toContain('limt');
    expect((await call(env, 'alice', 'GET', `/v1/batches/${batch.body.batchId}?limit=1`)).status).toBe(200);
  });

  it('refuses an offset of the study list too large for Redis as a bad request, not an internal error', async () => {
    const { env } = harness;
    const huge = await call<ErrorBody>(env, 'alice', 'GET', '/v1/studies?offset=99999999999999999999999');
    expect([huge.status, huge.body.code]).toEqual([400, 'invalid_request']);
    expect(huge.body.message).toContain('querystring/offset');
    expect((await call(env, 'alice', 'GET', `/v1/studies?offset=${Number.MAX_SAFE_INTEGER}`)).status).toBe(200);
  });
});
