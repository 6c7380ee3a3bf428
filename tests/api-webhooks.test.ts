import { describe, expect, it } from 'vitest';
import { verifyWebhookSignature, type StudyView, type SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import type { TestClient } from './api-test-env.js';
import { failFirstCalls } from './helpers/index.js';

const harness = useApiHarness();

/** The secret a client's webhooks are signed with, as the API gives it to that client. */
async function webhookSecretOf(client: TestClient): Promise<string> {
  const answer = await call<{ secret: string }>(harness.env, client, 'GET', '/v1/webhooks/secret');
  expect(answer.status).toBe(200);
  expect(answer.headers.get('cache-control')).toBe('no-store');
  return answer.body.secret;
}

describe('study webhooks', () => {
  it('delivers a signed study.completed, retrying after a failed attempt, and shows the attempts', async () => {
    const receiver = await harness.startReceiver([503]);
    await harness.startWorker();
    const [slice] = mriSlices('yes', 1);
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { callbackUrl: `${receiver.url}/hooks/btd?token=abc` }),
    });
    const hooks = await receiver.waitFor(2);
    const [failed, delivered] = hooks;

    // Every attempt is signed afresh over its own timestamp and the same body, with alice's own secret:
    // neither bob's (which bob could sign with) nor the deployment's WEBHOOK_SECRET verifies it.
    const secret = await webhookSecretOf('alice');
    expect(await webhookSecretOf('bob')).not.toBe(secret);
    for (const hook of hooks) {
      const signature = String(hook.headers['x-btd-signature']);
      expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verifyWebhookSignature(secret, signature, hook.body)).toBe(true);
      expect(verifyWebhookSignature(await webhookSecretOf('bob'), signature, hook.body)).toBe(false);
      expect(verifyWebhookSignature(harness.env.webhookSecret, signature, hook.body)).toBe(false);
      expect(verifyWebhookSignature(secret, signature, hook.body.replace('done', 'failed'))).toBe(false);
      expect(hook.headers['x-btd-event']).toBe('study.completed');
      expect(hook.path).toBe('/hooks/btd?token=abc');
    }
    expect(delivered!.body).toBe(failed!.body);
    expect(delivered!.receivedAt - failed!.receivedAt).toBeGreaterThanOrEqual(900); // backoff, not an immediate retry

    const body = JSON.parse(delivered!.body) as { event: string; study: StudyView };
    expect(body.event).toBe('study.completed');
    expect(body.study.studyId).toBe(submitted.body.studyId);
    expect(body.study.state).toBe('done');
    expect(body.study.images[0]!.result?.label).toMatch(/tumor/);

    const study = await waitForStudy(harness.env, 'alice', submitted.body.studyId, (s) => s.webhook?.deliveredAt !== undefined);
    expect(study.webhook).toMatchObject({ attempts: 2, lastStatus: 200 });
    expect(receiver.received).toHaveLength(2);
  });

  it('sends a webhook the receiver accepted once, when recording the delivery meets a Redis blip', async () => {
    const receiver = await harness.startReceiver();
    await harness.startWorker();
    // The receiver has answered 200; the write that records it fails, as it would while Redis restarts.
    const recording = failFirstCalls(harness.env.api.ctx.deliveries, 'recordAttempt');
    const [slice] = mriSlices('yes', 1);
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { callbackUrl: `${receiver.url}/hooks/btd` }),
    });
    const study = await waitForStudy(harness.env, 'alice', submitted.body.studyId, (s) => s.webhook?.deliveredAt !== undefined);
    expect(recording.left()).toBe(0);
    expect(study.webhook).toMatchObject({ attempts: 1, lastStatus: 200 });
    expect(receiver.received).toHaveLength(1);
  });

  it('sends nothing for a study without callbackUrl', async () => {
    await harness.startWorker();
    const [slice] = mriSlices('no', 1);
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]) });
    const study = await waitForStudy(harness.env, 'alice', submitted.body.studyId);
    expect(study.webhook).toBeUndefined();
    expect(await harness.env.api.ctx.queues.webhooks.getJobCountByTypes('waiting', 'delayed', 'completed', 'failed')).toBe(0);
  });
});
