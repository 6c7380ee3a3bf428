import { rm } from 'node:fs/promises';
import { initBackend } from '@btd/model';
import { ObjectStore, closeRedis, createLogger, createProducerConnection, createResultsQueue, createWorkerConnection } from '@btd/shared';
import { DirectoryModelProvider, startInferenceWorker, type ModelProvider, type RunningInferenceWorker } from '@btd/inference-worker';
import type { ApiTestEnv } from './api-test-env.js';
import { writeTestModels } from './helpers/index.js';

/** An inference worker (the service's own, in process) on an API test's queues, with untrained models. */
export interface TestInferenceWorker {
  readonly running: RunningInferenceWorker;
  close(): Promise<void>;
}

/** Starts the inference worker service's consumer on the env's queues and bucket; `wrap` may stand between it and its models. */
export async function startTestInferenceWorker(env: ApiTestEnv, wrap: (models: ModelProvider) => ModelProvider = (models) => models): Promise<TestInferenceWorker> {
  const modelsDir = await writeTestModels();
  await initBackend({ prefer: 'wasm' });
  const logger = createLogger({ name: 'worker-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });
  const models = await DirectoryModelProvider.load(modelsDir, logger);
  const store = new ObjectStore(env.config);
  const producer = createProducerConnection(env.config.redisUrl);
  const results = createResultsQueue(producer, env.prefix);
  const connection = createWorkerConnection(env.config.redisUrl);
  const running = startInferenceWorker({
    config: { queuePrefix: env.prefix, concurrency: 1, lockDurationMs: 30_000, stalledIntervalMs: 30_000, maxStalledCount: 1 },
    connection,
    store,
    results,
    models: wrap(models),
    logger,
  });
  return {
    running,
    close: async () => {
      await running.close();
      await closeRedis(connection);
      await results.close();
      await closeRedis(producer);
      store.close();
      await models.close();
      await rm(modelsDir, { recursive: true, force: true });
    },
  };
}
