import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { clientWebhookSecret, signWebhook, verifyWebhookSignature } from './webhook-signature.js';

const secret = 'whsec-0123456789abcdef';
const body = '{"event":"study.completed"}';

describe('webhook signatures', () => {
  it('is HMAC-SHA256 over "<t>.<body>", as documented for receivers', () => {
    const header = signWebhook(secret, body, 1_700_000_000);
    const expected = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex');
    expect(header).toBe(`t=1700000000,v1=${expected}`);
  });

  it("derives each client's signing secret from the deployment's, so that one client's signature never verifies as another's", () => {
    const alice = clientWebhookSecret(secret, 'alice');
    expect(clientWebhookSecret(secret, 'alice')).toBe(alice);
    expect(new Set([alice, clientWebhookSecret(secret, 'bob'), clientWebhookSecret('whsec-another-deployment', 'alice'), secret]).size).toBe(4);
    const forged = signWebhook(clientWebhookSecret(secret, 'bob'), body, 1_700_000_000);
    expect(verifyWebhookSignature(alice, forged, body, { nowSeconds: 1_700_000_000 })).toBe(false);
  });

  it('verifies within the tolerance and refuses stale, altered or foreign signatures', () => {
    const header = signWebhook(secret, body, 1_700_000_000);
    expect(verifyWebhookSignature(secret, header, body, { nowSeconds: 1_700_000_100 })).toBe(true);
    expect(verifyWebhookSignature(secret, header, body, { nowSeconds: 1_700_000_400 })).toBe(false);
    expect(verifyWebhookSignature(secret, header, `${body} `, { nowSeconds: 1_700_000_000 })).toBe(false);
    expect(verifyWebhookSignature('another-secret-value', header, body, { nowSeconds: 1_700_000_000 })).toBe(false);
    expect(verifyWebhookSignature(secret, header.replace('t=1700000000', 't=1700000001'), body, { nowSeconds: 1_700_000_000 })).toBe(false);
    expect(verifyWebhookSignature(secret, undefined, body)).toBe(false);
  });
});
