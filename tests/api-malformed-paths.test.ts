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
