import { ModelRegistry, type ArtifactFiles, type Logger, type ObjectStore, type Redis } from '@btd/shared';
import { loadModel, type LoadedModel } from '@btd/model';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { WorkerConfig } from './config.js';
import { DirectoryModelProvider } from './directory-model-provider.js';
import { RegistryModelProvider, type ModelProvider } from './model-provider.js';
import { ThreadedModel } from './model-thread.js';

/** A model provider with its clean-up. */
export type ClosableModelProvider = ModelProvider & { close(): Promise<void> };

/** What the configured model source needs. */
export interface ModelSourceDeps {
  config: Pick<WorkerConfig, 'modelSource' | 'modelsDir' | 'queuePrefix' | 'modelPollIntervalMs' | 'modelThreads' | 'tfBackend'>;
  workerId: string;
  store: ObjectStore;
  /** Producer connection; the registry uses it for promotion notices. */
  redis: Redis;
  logger: Logger;
  metrics: MetricsRegistry;
}

/**
 * Loads the models `MODEL_SOURCE` names: the promoted versions from the S3 registry (publishing
 * the bundled ones first if it is empty), or the artifacts in `MODELS_DIR` as they are; each on a
 * thread of its own with `WORKER_MODEL_THREADS`.
 */
export async function openModelSource(deps: ModelSourceDeps): Promise<ClosableModelProvider> {
  const { config, logger } = deps;
  const load = config.modelThreads ? (files: ArtifactFiles): Promise<LoadedModel> => ThreadedModel.load(files, config.tfBackend) : loadModel;
  if (config.modelSource === 'directory') return DirectoryModelProvider.load(config.modelsDir, logger, { load });
  const registry = new ModelRegistry({ store: deps.store, redis: deps.redis, namespace: config.queuePrefix });
  const provider = new RegistryModelProvider({
    registry,
    logger,
    workerId: deps.workerId,
    modelsDir: config.modelsDir,
    pollIntervalMs: config.modelPollIntervalMs,
    metrics: deps.metrics,
    load,
  });
  try {
    await provider.start();
  } catch (error) {
    await provider.close();
    throw error;
  }
  return provider;
}
