import { describe, expect, it } from 'vitest';
import { isRedisNotReady, redisRefusal } from './redis-at-start.js';
import { RedisUnavailableError } from './redis-unavailable.error.js';

const CONFIGURED_URL = 'redis://app:s3cret@redis:6379/2';

/** An error as a failed ping throws it: the reply or socket error as its cause. */
function pingFailure(reason: string): RedisUnavailableError {
  return new RedisUnavailableError('redis://app:***@redis:6379/2', reason, { cause: new Error(reason) });
}

describe('redisRefusal', () => {
  it.each([
    'WRONGPASS invalid username-password pair or user is disabled.',
    'NOAUTH Authentication required.',
    'NOPERM User app has no permissions to run the \'ping\' command',
    'ERR invalid password',
    'ERR DB index is out of range',
  ])('names REDIS_URL, its password masked, for "%s"', (reason) => {
    const refusal = redisRefusal(pingFailure(reason), CONFIGURED_URL);
    expect(refusal?.issues).toEqual([{ env: 'REDIS_URL', message: expect.stringContaining(`redis://app:***@redis:6379/2 refused the connection (${reason})`) }]);
    expect(refusal?.message).not.toContain('s3cret');
  });

  it.each(['connect ECONNREFUSED 10.0.0.7:6379', 'getaddrinfo ENOTFOUND redis', 'LOADING Redis is loading the dataset in memory', 'no answer within 5000 ms'])(
    'is no refusal for "%s", which a wait may change',
    (reason) => {
      expect(redisRefusal(pingFailure(reason), CONFIGURED_URL)).toBeUndefined();
    },
  );
});

describe('isRedisNotReady', () => {
  it('tells a Redis that answered but cannot serve yet from one that is not there', () => {
    expect(isRedisNotReady(pingFailure('LOADING Redis is loading the dataset in memory'))).toBe(true);
    expect(isRedisNotReady(pingFailure('BUSY Redis is busy running a script.'))).toBe(true);
    expect(isRedisNotReady(pingFailure('connect ECONNREFUSED 127.0.0.1:6379'))).toBe(false);
    expect(isRedisNotReady(pingFailure('WRONGPASS invalid username-password pair or user is disabled.'))).toBe(false);
  });
});
