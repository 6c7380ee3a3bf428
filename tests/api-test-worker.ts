import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker, UnrecoverableError } from 'bullmq';
import { ImageDecodeError, initBackend, loadModel, renderOverlay, writeInitialArtifact, type LoadedModel } from '@btd/model';
import {
  INFERENCE_QUEUE,
  ObjectStore,
  closeRedis,
  createProducerConnection,
  createResultsQueue,
  createWorkerConnection,
  overlayKey,
  postResult,
  resultKey,
  type InferenceJob,
} from '@btd/shared';
import type { ApiTestEnv } from './api-test-env.js';

/**
 * A minimal inference consumer for the API tests: it speaks the same queue contract as the
 * inference worker service (read original → both models → overlay → results queue) with
 * untrained models, so the tests exercise the API's plumbing end to end.
 */
export interface TestInferenceWorker {
  readonly worker: Worker<InferenceJob>;
  close(): Promise<void>;
}

async function loadUntrainedModels(dir: string): Promise<{ binary: LoadedModel; type: LoadedModel }> {
  await initBackend({ prefer: 'wasm' });
  await writeInitialArtifact({ task: 'tumor-binary', outDir: path.join(dir, 'binary'), version: 'test-1' });
  await writeInitialArtifact({ task: 'tumor-type', outDir: path.join(dir, 'type'), version: 'test-1' });
  return { binary: await loadModel(path.join(dir, 'binary')), type: await loadModel(path.join(dir, 'type')) };
}

/** Starts a consumer of the env's inference queue. */
export async function startTestInferenceWorker(env: ApiTestEnv): Promise<TestInferenceWorker> {
  const dir = await mkdtemp(path.join(tmpdir(), 'btd-models-'));
  const models = await loadUntrainedModels(dir);
  const store = new ObjectStore(env.config);
  const producer = createProducerConnection(env.config.redisUrl);
  const results = createResultsQueue(producer, env.prefix);
  const connection = createWorkerConnection(env.config.redisUrl);
  const worker = new Worker<InferenceJob>(
    INFERENCE_QUEUE,
    async (job) => {
      const started = performance.now();
      const { studyId, imageId, clientId, objectKey } = job.data;
      const bytes = await store.get(objectKey);
      const finishedAt = () => new Date().toISOString();
      let binary, type;
      try {
        binary = await models.binary.predict(bytes, { heatmap: true });
        type = await models.type.predict(bytes, { heatmap: false });
      } catch (error) {
        if (!(error instanceof ImageDecodeError)) throw error;
        await postResult(results, { kind: 'failed', studyId, imageId, clientId, finishedAt: finishedAt(), reason: error.message });
        throw new UnrecoverableError(error.message);
      }
      await store.put(overlayKey(imageId), await renderOverlay(bytes, binary), 'image/png');
      const resultKeys = { 'tumor-binary': resultKey(imageId, 'tumor-binary'), 'tumor-type': resultKey(imageId, 'tumor-type') };
      await store.putJson(resultKeys['tumor-binary'], { label: binary.label, probabilities: binary.probabilities, box: binary.box });
      await store.putJson(resultKeys['tumor-type'], { label: type.label, probabilities: type.probabilities });
      const ms = (key: 'preprocessMs' | 'modelMs' | 'heatmapMs') => binary.timings[key] + type.timings[key];
      await postResult(results, {
        kind: 'succeeded',
        studyId,
        imageId,
        clientId,
        finishedAt: finishedAt(),
        resultKeys,
        overlayKey: overlayKey(imageId),
        summary: {
          label: binary.label,
          tumorProbability: binary.probabilities.tumor ?? 0,
          probabilities: binary.probabilities,
          typeLabel: type.label,
          typeProbabilities: type.probabilities,
          box: binary.box,
          models: [
            { task: 'tumor-binary', name: models.binary.manifest.name, version: models.binary.manifest.version },
            { task: 'tumor-type', name: models.type.manifest.name, version: models.type.manifest.version },
          ],
          timings: { downloadMs: 0, preprocessMs: ms('preprocessMs'), modelMs: ms('modelMs'), heatmapMs: ms('heatmapMs'), uploadMs: 0, totalMs: performance.now() - started },
        },
      });
    },
    { connection, prefix: env.prefix, concurrency: 1 },
  );
  return {
    worker,
    close: async () => {
      await worker.close();
      await results.close();
      await closeRedis(producer);
      await closeRedis(connection);
      store.close();
      models.binary.dispose();
      models.type.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
