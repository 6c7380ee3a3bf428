import { describe, expect, it } from 'vitest';
import { fingerprintOf, type ErrorBody } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { useApiHarness } from './api-harness.js';

const harness = useApiHarness();

const [slice] = mriSlices('no', 1);
type Form = Parameters<typeof fingerprintOf>[0];

describe('a retry while the request it repeats is still at work', () => {
  it('is answered 409 with a Retry-After, by its Idempotency-Key or its externalId', async () => {
    const { env } = harness;
    const ctx = env.api.ctx;
    // What a request that is still storing its study holds: the key claimed, the external id claimed by a study not yet written.
    const fingerprint = fingerprintOf({ fields: {}, images: [{ bytes: slice!.bytes }] } as unknown as Form, undefined);
    expect((await ctx.idempotency.claim('alice', 'KEY-1', fingerprint)).kind).toBe('claimed');
    expect(await ctx.externalIds.claim('alice', 'ACC-1', 'stu_still_being_stored')).toBeUndefined();

    const file = [{ name: slice!.name, bytes: slice!.bytes }];
    // Each waits for the first request (15 s) before it answers.
    const [byKey, byExternalId] = await Promise.all([
      call<ErrorBody>(env, 'alice', 'POST', '/v1/studies', { body: studyForm(file), headers: { 'idempotency-key': 'KEY-1' } }),
      call<ErrorBody>(env, 'alice', 'POST', '/v1/studies', { body: studyForm(file, { externalId: 'ACC-1' }) }),
    ]);
    expect([byKey.status, byKey.body.code, byKey.headers.get('retry-after')]).toEqual([409, 'idempotency_in_progress', '5']);
    expect(byKey.body.message).toContain('retry after 5 seconds');
    expect([byExternalId.status, byExternalId.body.code, byExternalId.headers.get('retry-after')]).toEqual([409, 'external_id_in_progress', '5']);
  }, 60_000);
});
