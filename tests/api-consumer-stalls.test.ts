import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from 'bullmq';
import { startApi, type ApiConfig, type RunningApi, type StudyView, type SubmittedStudy } from '@btd/api';
import { RESULTS_QUEUE, WEBHOOKS_QUEUE, createLogger, resultJobId, webhookJobId } from '@btd/shared';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from './api-webhook-receiver.js';
import { REPO_ROOT, spawnService, waitFor, type ServiceProcess } from './helpers/index.js';

const harness = useApiHarness();
/** Short consumer settings: a job whose API process died is taken up again within seconds. */
const SHORT = { consumerLockDurationMs: 5000, consumerStalledIntervalMs: 1000 } as const;
const children: ServiceProcess[] = [];
const receivers: WebhookReceiver[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
    await child.exited;
  }
  for (const receiver of receivers.splice(0)) await receiver.close();
});

/** Starts `script` as an API process on this test's queues, bucket and keys, with the short consumer settings. */
function spawnApi(script: string, config: ApiConfig): ServiceProcess {
  const child = spawnService(
    script,
    {
      REDIS_URL: config.redisUrl,
      QUEUE_PREFIX: config.queuePrefix,
      ...harness.s3.env(config),
      API_KEYS: config.apiKeys ?? '',
      WEBHOOK_SECRET: config.webhookSecret ?? '',
      WEBHOOK_ALLOWED_NETWORKS: config.webhookAllowedNetworks,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: config.dataDir,
      LOG_LEVEL: 'info',
      CONSUMER_LOCK_DURATION_MS: String(SHORT.consumerLockDurationMs),
      CONSUMER_STALLED_INTERVAL_MS: String(SHORT.consumerStalledIntervalMs),
    },
    'API listening',
  );
  children.push(child);
  return child;
}

/** Submits one slice calling `receiver`, then stops the test's API, so that only the API processes the test starts consume. */
async function submitThenStopApi(receiver: WebhookReceiver): Promise<SubmittedStudy> {
  const [slice] = mriSlices('yes', 1);
  const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
    body: studyForm([{ name: 'a.jpg', bytes: slice!.bytes }], { callbackUrl: `${receiver.url}/study` }),
  });
  expect(submitted.status).toBe(202);
  await harness.env.api.close();
  return submitted.body;
}

/** The lock the holder keeps on a job lasts the short CONSUMER_LOCK_DURATION_MS (renewed every half of it), then kills the holder. */
async function killHolding(holder: ServiceProcess, queue: string, jobId: string): Promise<void> {
  const lockMs = await harness.env.redis.pttl(`${harness.env.prefix}:${queue}:${jobId}:lock`);
  expect(lockMs).toBeGreaterThan(0);
  expect(lockMs).toBeLessThanOrEqual(SHORT.consumerLockDurationMs);
  holder.child.kill('SIGKILL');
  expect((await holder.exited).signal).toBe('SIGKILL');
}

/** A second API, started in process with the short settings once the holder is dead. */
interface Rescuer {
  /** The job once this API (or the stall checks) has finished it. */
  readonly job: Job;
  /** The study as this API shows it once `until` holds. */
  view(studyId: string, until: (study: StudyView) => boolean): Promise<StudyView>;
  close(): Promise<void>;
}

/** Starts a second API with the short settings and waits for the job `jobId` of `queue` to finish. */
async function rescue(queue: 'results' | 'webhooks', jobId: string): Promise<Rescuer> {
  const api: RunningApi = await startApi({ ...harness.env.config, ...SHORT }, createLogger({ name: 'api-test', level: 'silent', pretty: false }));
  try {
    const job = await waitFor(async () => {
      const current = await api.ctx.queues[queue].getJob(jobId);
      return current?.finishedOn ? (current as Job) : undefined;
    }, { timeoutMs: 60_000, what: 'the job to be taken up again and finished' });
    // Stall checks run every CONSUMER_STALLED_INTERVAL_MS: the mark each leaves lasts no longer.
    const checkMs = await waitFor(async () => {
      const ms = await harness.env.redis.pttl(`${harness.env.prefix}:${queue}:stalled-check`);
      return ms > 0 && ms;
    }, { what: 'a stall check' });
    expect(checkMs).toBeLessThanOrEqual(SHORT.consumerStalledIntervalMs);
    return { job, view: (studyId, until) => waitForStudy({ ...harness.env, url: api.url }, 'alice', studyId, until), close: () => api.close() };
  } catch (error) {
    await api.close();
    throw error;
  }
}

describe('result and webhook jobs of an API process that dies holding them (CONSUMER_LOCK_DURATION_MS, CONSUMER_STALLED_INTERVAL_MS)', () => {
  it('applies a result, once, that an API process was killed holding, in a second API', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const { studyId, images } = await submitThenStopApi(receiver);
    // This API applies the result's counters and dies before its job is done.
    const holder = spawnApi(path.join(REPO_ROOT, 'tests/fixtures/api/result-holding-api.mjs'), harness.env.config);
    await holder.ready;
    await harness.startWorker();
    await waitFor(() => holder.logs.some((line) => line.includes('"holding a result job"')), { timeoutMs: 60_000, what: 'the API process to hold the result' });
    const jobId = resultJobId(images[0]!.imageId);
    await killHolding(holder, RESULTS_QUEUE, jobId);

    const rescuer = await rescue(RESULTS_QUEUE, jobId);
    try {
      expect([await rescuer.job.getState(), rescuer.job.stalledCounter, rescuer.job.failedReason]).toEqual(['completed', 1, undefined]);
      // Run twice, applied once: the image counted once, the webhook sent once.
      const study = await rescuer.view(studyId, (s) => s.webhook?.deliveredAt !== undefined);
      expect([study.state, study.images.map((image) => image.state)]).toEqual(['done', ['done']]);
      expect(study.webhook).toMatchObject({ attempts: 1, lastStatus: 200 });
      expect(receiver.received.map((hook) => hook.path)).toEqual(['/study']);
    } finally {
      await rescuer.close();
    }
  });

  it('delivers a webhook that an API process was killed sending, from a second API, recording it once', async () => {
    // The receiver answers after 3 s: the first API is killed while it waits.
    const receiver = await startWebhookReceiver([], 3000);
    receivers.push(receiver);
    const { studyId } = await submitThenStopApi(receiver);
    const holder = spawnApi(path.join(REPO_ROOT, 'services/api/dist/main.js'), harness.env.config);
    await holder.ready;
    await harness.startWorker();
    await receiver.waitFor(1, undefined, 60_000);
    const jobId = webhookJobId(`study-${studyId}`);
    await killHolding(holder, WEBHOOKS_QUEUE, jobId);

    const rescuer = await rescue(WEBHOOKS_QUEUE, jobId);
    try {
      expect([await rescuer.job.getState(), rescuer.job.stalledCounter, rescuer.job.failedReason]).toEqual(['completed', 1, undefined]);
      const study = await rescuer.view(studyId, (s) => s.webhook?.deliveredAt !== undefined);
      expect(study.webhook).toMatchObject({ attempts: 1, lastStatus: 200 });
      const deliveries = receiver.received.map((hook) => hook.headers['x-btd-delivery']);
      expect(deliveries).toEqual([`study-${studyId}`, `study-${studyId}`]);
    } finally {
      await rescuer.close();
    }
  });
});
