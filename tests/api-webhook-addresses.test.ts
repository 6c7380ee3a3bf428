import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { BatchView } from '@btd/api';
import { call } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { startApiEnv, type ApiTestEnv } from './api-test-env.js';

// No non-public network allowed: the default of a deployment. The receiver answers http only, and the
// addresses are checked where the webhook is sent, so URLs in clear are let through at submission.
const IN_CLEAR = { WEBHOOK_REQUIRE_HTTPS: 'false' };
const harness = useApiHarness({ WEBHOOK_ALLOWED_NETWORKS: '', ...IN_CLEAR });

/** Creates and closes an empty batch calling `callbackUrl`, which completes it at once; returns its first webhook attempt. */
async function batchWebhook(env: ApiTestEnv, callbackUrl: string): Promise<BatchView['webhook']> {
  const created = await call<BatchView>(env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await call(env, 'alice', 'POST', `/v1/batches/${created.body.batchId}/close`);
  for (let polls = 0; polls < 200; polls++) {
    const { webhook } = (await call<BatchView>(env, 'alice', 'GET', `/v1/batches/${created.body.batchId}`)).body;
    if (webhook && webhook.attempts > 0) return webhook;
    await sleep(50);
  }
  throw new Error(`no webhook attempt to ${callbackUrl}`);
}

describe('webhook addresses', () => {
  it('sends no webhook to a loopback, private or link-local address, however the URL names it, unless WEBHOOK_ALLOWED_NETWORKS lists it', async () => {
    const receiver = await harness.startReceiver();
    const { port } = new URL(receiver.url);
    const internal = [
      receiver.url,
      `http://localhost:${port}/hooks`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      `http://2130706433:${port}/`,
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1/',
    ];
    for (const callbackUrl of internal) {
      const webhook = await batchWebhook(harness.env, callbackUrl);
      expect(webhook, callbackUrl).toMatchObject({ attempts: 1, lastStatus: 0 });
      expect(webhook?.lastError, callbackUrl).toMatch(/is not a public address; WEBHOOK_ALLOWED_NETWORKS does not list its network$/);
      // A name's error names the name only: it does not tell a client the address a name has inside.
      if (callbackUrl.includes('localhost')) expect(webhook?.lastError).toBe('localhost is not a public address; WEBHOOK_ALLOWED_NETWORKS does not list its network');
    }
    expect(receiver.received).toEqual([]);

    const allowing = await startApiEnv(harness.s3, { WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8', ...IN_CLEAR });
    try {
      expect(await batchWebhook(allowing, `http://localhost:${port}/hooks`)).toMatchObject({ attempts: 1, lastStatus: 200 });
      expect((await receiver.waitFor(1)).map((hook) => hook.path)).toEqual(['/hooks']);
    } finally {
      await allowing.close();
    }
  });
});
