import { describe, expect, it } from 'vitest';
import { callbackUrlPolicy, checkCallbackUrl } from './callback-url.js';

// Loopback allowed, as on a machine receiving its own webhooks: only the https rule is in question.
const refusal = (value: string, requireHttps: boolean, allowedNetworks = '127.0.0.0/8, ::1') => {
  try {
    checkCallbackUrl(value, callbackUrlPolicy({ webhookRequireHttps: requireHttps, webhookAllowedNetworks: allowedNetworks }));
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
    expect(refusal('http://10.20.0.5/hooks', false, '10.20.0.0/16')).toBeUndefined();
    expect(refusal('ftp://example.org/hook', false)).toContain('must be an http or https URL');
    expect(refusal('not a url', false)).toContain('is not a URL');
  });

  it('is refused when its host is a non-public address, in any form, that WEBHOOK_ALLOWED_NETWORKS does not list; a host name is left to delivery', () => {
    const refused = {
      'http://127.0.0.1:8099/study': '127.0.0.1',
      'http://127.1/': '127.0.0.1',
      'http://0x7f.0.0.1/': '127.0.0.1',
      'http://2130706433/': '127.0.0.1',
      'http://[::1]:9000/': '[::1]',
      'http://[::ffff:127.0.0.1]/': '[::ffff:7f00:1]',
      'https://169.254.169.254/latest/meta-data/': '169.254.169.254',
      'https://10.0.0.1/': '10.0.0.1',
      'https://[fd00::1]/': '[fd00::1]',
    };
    for (const [url, host] of Object.entries(refused)) {
      expect(refusal(url, false, ''), url).toBe(`field "callbackUrl" is refused: ${host} is not a public address; WEBHOOK_ALLOWED_NETWORKS does not list its network`);
    }
    for (const url of ['https://93.184.215.14/hook', 'https://[2606:4700:4700::1111]/', 'http://localhost:8099/', 'https://hooks.internal/']) {
      expect(refusal(url, false, ''), url).toBeUndefined();
    }
    // The default settings: http to loopback passes the https rule, and is refused for its address.
    expect(refusal('http://127.0.0.1:8099/study', true, '')).toContain('WEBHOOK_ALLOWED_NETWORKS does not list its network');
    expect(refusal('http://127.0.0.1:8099/study', true, '127.0.0.1/32')).toBeUndefined();
    expect(refusal('https://10.20.3.4/', true, '10.20.0.0/16')).toBeUndefined();
    expect(refusal('https://10.21.3.4/', true, '10.20.0.0/16')).toContain('WEBHOOK_ALLOWED_NETWORKS');
  });
});
