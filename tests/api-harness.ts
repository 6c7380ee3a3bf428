import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { startApiEnv, type ApiTestEnv } from './api-test-env.js';
import { startTestInferenceWorker, type TestInferenceWorker } from './api-test-worker.js';
import { startWebhookReceiver, type WebhookReceiver } from './api-webhook-receiver.js';
import { startTestS3, type TestS3 } from './helpers/index.js';

/** What a test file gets from {@link useApiHarness}: a fresh API per test, on one s3rver per file. */
export interface ApiHarness {
  /** This test's API (fresh queue prefix, bucket and keys). */
  readonly env: ApiTestEnv;
  readonly s3: TestS3;
  /** Starts an inference worker on this test's queues (`wrap` between it and its models); it is closed after the test. */
  startWorker(wrap?: Parameters<typeof startTestInferenceWorker>[1]): Promise<TestInferenceWorker>;
  /** Starts a webhook receiver answering with `statuses` first; it is closed after the test. */
  startReceiver(statuses?: number[]): Promise<WebhookReceiver>;
}

/**
 * Registers the hooks of an API test file: an s3rver for the file, an API per test, and
 * clean-up of everything a test started (workers, receivers, the API with its keys and objects).
 */
export function useApiHarness(overrides: Record<string, string> = {}): ApiHarness {
  let s3: TestS3 | undefined;
  let env: ApiTestEnv | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is only available inside a test`);
    return value;
  };

  beforeAll(async () => {
    s3 = await startTestS3();
  });
  afterAll(async () => {
    await s3?.close();
  });
  beforeEach(async () => {
    env = await startApiEnv(started(s3, 's3'), overrides);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await env?.close();
    env = undefined;
  });

  return {
    get env() {
      return started(env, 'env');
    },
    get s3() {
      return started(s3, 's3');
    },
    async startWorker(wrap) {
      const worker = await startTestInferenceWorker(started(env, 'env'), wrap);
      cleanups.push(worker.close);
      return worker;
    },
    async startReceiver(statuses = []) {
      const receiver = await startWebhookReceiver(statuses);
      cleanups.push(receiver.close);
      return receiver;
    },
  };
}
