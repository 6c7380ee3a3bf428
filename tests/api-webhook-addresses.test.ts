import { describe, expect, it } from 'vitest';
import type { BatchView, ErrorBody, StudyView, SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { startApiEnv, type ApiTestEnv } from './api-test-env.js';
import { startTestInferenceWorker } from './api-test-worker.js';
import { dicomFile } from './helpers/dicom-file.js';
import { waitFor } from './helpers/index.js';

// No non-public network allowed, and https required (but for loopback): the defaults of a deployment.
const harness = useApiHarness({ WEBHOOK_ALLOWED_NETWORKS: '' });
// The receiver answers http only; addresses are checked apart from the https rule.
const IN_CLEAR = { WEBHOOK_REQUIRE_HTTPS: 'false' };
const REFUSED = 'is not a public address; WEBHOOK_ALLOWED_NETWORKS does not list its network';

/** Submits `callbackUrl` with a study form, a new batch and a STOW-RS request (its `n`th instance); returns the three answers. */
async function submitEverywhere(env: ApiTestEnv, callbackUrl: string, n: number) {
  const [slice] = mriSlices('yes', 1);
  const study = await call<SubmittedStudy | ErrorBody>(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { callbackUrl }) });
  const batch = await call<BatchView | ErrorBody>(env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl } });
  const uid = `1.2.826.0.1.3680043.2.1143.77.${n}`;
  const instance = dicomFile({ width: 64, height: 64, pixels: Uint8Array.from({ length: 64 * 64 }, (_, i) => i % 251), bitsAllocated: 8, bitsStored: 8, identifiers: { studyInstanceUid: uid, seriesInstanceUid: `${uid}.1`, sopInstanceUid: `${uid}.1.1` } });
  const body = Buffer.concat([Buffer.from('--s\r\nContent-Type: application/dicom\r\n\r\n'), instance, Buffer.from('\r\n--s--\r\n')]);
  const headers = { ...env.auth('alice'), 'content-type': 'multipart/related; type="application/dicom"; boundary=s' };
  const answer = await fetch(`${env.url}/v1/dicomweb/studies?callbackUrl=${encodeURIComponent(callbackUrl)}`, { method: 'POST', headers, body });
  const stow = { status: answer.status, body: (await answer.json()) as ErrorBody };
  return { study, batch, stow };
}

/** Waits until the webhook of a study or batch (`read` again and again) is delivered or has failed for good. */
function settledWebhook(read: () => Promise<{ webhook?: StudyView['webhook'] }>, what: string) {
  return waitFor(async () => {
    const { webhook } = await read();
    return webhook?.failedAt || webhook?.deliveredAt ? webhook : undefined;
  }, { what: `the ${what} webhook to be delivered or fail`, timeoutMs: 60_000 });
}

const batchView = (env: ApiTestEnv, batchId: string) => async () => (await call<BatchView>(env, 'alice', 'GET', `/v1/batches/${batchId}`)).body;

describe('webhook addresses', () => {
  it('refuses at submission, as a study, a batch or a STOW-RS query, a callbackUrl whose host is a non-public address, however written, unless WEBHOOK_ALLOWED_NETWORKS lists it', async () => {
    const urls = [
      'http://127.0.0.1:8099/study', // a receiver on the API's machine: http to loopback passes the https rule
      'http://127.1:8099/',
      'http://0x7f.0.0.1:8099/',
      'http://2130706433:8099/',
      'http://[::1]:8099/',
      'https://[::ffff:127.0.0.1]:8099/',
      'https://169.254.169.254/latest/meta-data/',
      'https://10.0.0.1/',
      'https://192.168.1.20/',
    ];
    for (const [n, callbackUrl] of urls.entries()) {
      const answers = await submitEverywhere(harness.env, callbackUrl, n);
      for (const [route, answer] of Object.entries(answers)) {
        expect([answer.status, (answer.body as ErrorBody).code], `${route} ${callbackUrl}`).toEqual([400, 'invalid_field']);
        expect((answer.body as ErrorBody).message, `${route} ${callbackUrl}`).toMatch(new RegExp(`^field "callbackUrl" is refused: \\S+ ${REFUSED}$`));
      }
    }
    expect(await harness.env.objectKeys()).toEqual([]);
    expect((await harness.env.redisKeys()).filter((key) => key.startsWith(`${harness.env.prefix}:api:`))).toEqual([]);

    const allowing = await startApiEnv(harness.s3, { WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8, ::1, 169.254.169.254, 10.0.0.0/8, 192.168.1.0/24' });
    try {
      for (const [n, callbackUrl] of urls.entries()) {
        const { study, batch, stow } = await submitEverywhere(allowing, callbackUrl, n);
        expect([study.status, batch.status, stow.status], callbackUrl).toEqual([202, 201, 200]);
      }
    } finally {
      await allowing.close();
    }
  });

  it('takes a host name that resolves to loopback at submission, and fails its delivery at once, without retries or a request, naming WEBHOOK_ALLOWED_NETWORKS; delivers it once its network is listed', async () => {
    const receiver = await harness.startReceiver();
    const { port } = new URL(receiver.url);
    const env = await startApiEnv(harness.s3, { WEBHOOK_ALLOWED_NETWORKS: '', ...IN_CLEAR });
    const worker = await startTestInferenceWorker(env);
    try {
      const [slice] = mriSlices('yes', 1);
      const submitted = await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { callbackUrl: `http://localhost:${port}/study` }) });
      expect(submitted.status).toBe(202);
      const created = await call<BatchView>(env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl: `http://localhost:${port}/batch` } });
      expect(created.status).toBe(201);
      expect((await call(env, 'alice', 'POST', `/v1/batches/${created.body.batchId}/close`)).status).toBe(200);

      const webhooks = [
        await settledWebhook(() => waitForStudy(env, 'alice', submitted.body.studyId), 'study'),
        await settledWebhook(batchView(env, created.body.batchId), 'batch'),
      ];
      for (const webhook of webhooks) {
        // One attempt, recorded; its error names the host as the URL gives it, never its address.
        expect(webhook).toMatchObject({ attempts: 1, lastStatus: 0, lastError: `localhost ${REFUSED}` });
        expect(webhook?.deliveredAt).toBeUndefined();
        expect(webhook?.failedReason).toMatch(new RegExp(`not sent, the settings in force refuse its address: localhost ${REFUSED}$`));
      }
      // Failed for good at the first attempt: no retry is waiting.
      const jobs = await env.api.ctx.queues.webhooks.getJobs(['failed', 'delayed', 'waiting', 'active', 'completed']);
      expect(jobs.map((job) => [job.data.deliveryId, job.finishedOn !== undefined, job.attemptsMade]).sort()).toEqual([
        [`batch-${created.body.batchId}`, true, 1],
        [`study-${submitted.body.studyId}`, true, 1],
      ]);
      expect(receiver.received).toEqual([]);
    } finally {
      await worker.close();
      await env.close();
    }

    const allowing = await startApiEnv(harness.s3, { WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8', ...IN_CLEAR });
    try {
      const created = await call<BatchView>(allowing, 'alice', 'POST', '/v1/batches', { body: { callbackUrl: `http://localhost:${port}/hooks` } });
      await call(allowing, 'alice', 'POST', `/v1/batches/${created.body.batchId}/close`);
      expect(await settledWebhook(batchView(allowing, created.body.batchId), 'batch')).toMatchObject({ attempts: 1, lastStatus: 200 });
      expect(receiver.received.map((hook) => hook.path)).toEqual(['/hooks']);
    } finally {
      await allowing.close();
    }
  });

  it('retries a host name that does not resolve, as any failed attempt: only a refused address fails a delivery at once', async () => {
    const { env } = harness;
    const created = await call<BatchView>(env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl: 'https://btd-webhook-test.invalid/hooks' } });
    expect(created.status).toBe(201);
    await call(env, 'alice', 'POST', `/v1/batches/${created.body.batchId}/close`);
    const retrying = await waitFor(async () => {
      const [job] = await env.api.ctx.queues.webhooks.getJobs(['delayed']);
      return job?.attemptsMade === 1 ? job : undefined;
    }, { what: 'the webhook to wait for its retry' });
    expect(retrying.data.deliveryId).toBe(`batch-${created.body.batchId}`);
    const { webhook } = await batchView(env, created.body.batchId)();
    expect(webhook).toMatchObject({ attempts: 1, lastStatus: 0 });
    expect(webhook?.lastError).toMatch(/ENOTFOUND|EAI_AGAIN/);
    expect(webhook?.failedAt).toBeUndefined();
  });
});
