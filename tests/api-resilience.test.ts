import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadApiConfig, startApi, type SubmittedStudy } from '@btd/api';
import { RESULT_JOB_NAME, createLogger, createResultsQueue } from '@btd/shared';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { startApiEnv, type ApiTestEnv } from './api-test-env.js';
import { startTestInferenceWorker, type TestInferenceWorker } from './api-test-worker.js';
import { startWebhookReceiver, type WebhookReceiver } from './api-webhook-receiver.js';
import { startTestS3, waitFor, type TestS3 } from './helpers/index.js';

let s3: TestS3;
let env: ApiTestEnv;
let worker: TestInferenceWorker | undefined;
let receiver: WebhookReceiver | undefined;

beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3.close();
});
beforeEach(async () => {
  env = await startApiEnv(s3);
});
afterEach(async () => {
  await worker?.close();
  await receiver?.close();
  worker = undefined;
  receiver = undefined;
  await env.close();
});

describe('results consumer', () => {
  it('applies results that arrived while the API was down once it is back', async () => {
    const [slice] = mriSlices('yes', 1);
    const submitted = await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }]) });
    await env.api.close();

    worker = await startTestInferenceWorker(env);
    const results = createResultsQueue(env.redis, env.prefix);
    await waitFor(async () => (await results.getWaitingCount()) === 1 || undefined, { what: 'a result waiting for the API' });
    await results.close();

    // A second API process on the same queues and bucket picks the result up.
    const config = loadApiConfig(configEnv(env));
    const again = await startApi(config, createLogger({ name: 'api-test', level: 'silent', pretty: false }));
    try {
      const done = await waitForStudy({ ...env, url: again.url }, 'alice', submitted.body.studyId);
      expect(done.state).toBe('done');
    } finally {
      await again.close();
    }
  });

  it('applies a redelivered result once: counts, metrics and webhooks are not doubled', async () => {
    receiver = await startWebhookReceiver();
    const created = await call<{ batchId: string }>(env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl: `${receiver.url}/batch` } });
    const { batchId } = created.body;
    const [slice] = mriSlices('no', 1);
    const submitted = await call<SubmittedStudy>(env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, {
      body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { callbackUrl: `${receiver.url}/study` }),
    });
    await call(env, 'alice', 'POST', `/v1/batches/${batchId}/close`);
    worker = await startTestInferenceWorker(env);
    await waitForStudy(env, 'alice', submitted.body.studyId);
    await receiver.waitFor(1, '/batch');
    await receiver.waitFor(1, '/study');

    const results = env.api.ctx.queues.results;
    const [original] = await results.getJobs(['completed']);
    // The same message again under another job id, as after a crash between posting and acknowledging.
    const replay = await results.add(RESULT_JOB_NAME, original!.data, { jobId: `replay-${original!.id}` });
    await waitFor(async () => (await replay.getState()) === 'completed' || undefined, { what: 'the replay to be applied' });

    const batch = await call<{ counts: Record<string, number>; state: string }>(env, 'alice', 'GET', `/v1/batches/${batchId}`);
    expect(batch.body.counts).toEqual({ total: 1, queued: 0, processing: 0, done: 1, failed: 0 });
    const metrics = await (await fetch(`${env.url}/metrics`)).text();
    const applied = [...metrics.matchAll(/^btd_results_total\{label="[^"]+"\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
    expect(applied).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received.map((hook) => hook.path).sort()).toEqual(['/batch', '/study']);
  });
});

/** The environment a second API process needs to share the first one's queues, bucket and keys. */
function configEnv(first: ApiTestEnv): Record<string, string> {
  const c = first.config;
  return {
    REDIS_URL: c.redisUrl,
    QUEUE_PREFIX: c.queuePrefix,
    S3_ENDPOINT: c.s3Endpoint ?? '',
    S3_BUCKET: c.s3Bucket,
    S3_ACCESS_KEY_ID: c.s3AccessKeyId ?? '',
    S3_SECRET_ACCESS_KEY: c.s3SecretAccessKey ?? '',
    API_KEYS: c.apiKeys ?? '',
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: c.dataDir,
    WEBHOOK_SECRET: first.webhookSecret,
    LOG_LEVEL: 'silent',
  };
}
