import { describe, expect, it } from 'vitest';
import { checkCallbackUrl } from './callback-url.js';

const refusal = (value: string, requireHttps: boolean) => {
  try {
    checkCallbackUrl(value, { requireHttps });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
};

describe('a callbackUrl', () => {
  it('must be https to another machine when WEBHOOK_REQUIRE_HTTPS is on, in whatever form its address is written', () => {
    for (const url of ['http://hooks.example.org/btd', 'http://10.20.0.5/hooks', 'HTTP://[fd00::1]/', 'http://localhost/hook', 'http://[::ffff:10.0.0.1]/']) {
      expect(refusal(url, true), url).toContain('must be an https URL');
    }
    for (const url of ['https://hooks.example.org/btd', 'http://127.0.0.1:8080/hook', 'http://2130706433/hook', 'http://[::1]:9000/']) {
      expect(refusal(url, true), url).toBeUndefined();
    }
  });

  it('may be http when WEBHOOK_REQUIRE_HTTPS is off, and is never of another scheme', () => {
    expect(refusal('http://10.20.0.5/hooks', false)).toBeUndefined();
    expect(refusal('ftp://example.org/hook', false)).toContain('must be an http or https URL');
    expect(refusal('not a url', false)).toContain('is not a URL');
  });
});
