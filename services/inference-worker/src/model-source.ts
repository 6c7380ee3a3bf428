import { availableParallelism } from 'node:os';
import { ModelRegistry, type ArtifactFiles, type Logger, type ObjectStore, type Redis } from '@btd/shared';
import type { LoadedModel } from '@btd/model';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { WorkerConfig } from './config.js';
import { DirectoryModelProvider } from './directory-model-provider.js';
import { RegistryModelProvider, type ModelProvider } from './model-provider.js';
import { ModelThreadPool } from './model-thread-pool.js';

/** A model provider with its clean-up. */
export type ClosableModelProvider = ModelProvider & { close(): Promise<void> };

/** What the configured model source needs. */
export interface ModelSourceDeps {
  config: Pick<WorkerConfig, 'modelSource' | 'modelsDir' | 'queuePrefix' | 'modelPollIntervalMs' | 'modelThreads' | 'modelThreadCount' | 'tfBackend'>;
  workerId: string;
  store: ObjectStore;
  /** Producer connection; the registry uses it for promotion notices. */
  redis: Redis;
  logger: Logger;
  metrics: MetricsRegistry;
  /** Called once if a model thread dies: the models can no longer run, so the worker should stop and be restarted. */
  onBroken?: (error: Error) => void;
}

/**
 * Loads the models `MODEL_SOURCE` names: the promoted versions from the S3 registry (publishing
 * the bundled ones first if it is empty), or the artifacts in `MODELS_DIR` as they are. The models
 * run on threads of their own, never on the worker's event loop, which stays free for storage,
 * queue and lock traffic while a forward pass runs: one thread, or with `WORKER_MODEL_THREADS` a
 * pool (`WORKER_MODEL_THREAD_COUNT`, 0: one per core) over which each image is spread. The
 * threads close with the provider.
 */
export async function openModelSource(deps: ModelSourceDeps): Promise<ClosableModelProvider> {
  const { config } = deps;
  const pool = ModelThreadPool.start(modelThreadCount(config), config.tfBackend, deps.onBroken);
  try {
    const provider = await openProvider(deps, (files) => pool.load(files));
    deps.logger.info({ threads: pool.size, backend: pool.backendInfo }, pool.size > 1 ? 'models run on a thread pool' : 'models run on a thread of their own');
    return {
      acquire: (task) => provider.acquire(task),
      close: async () => {
        await provider.close();
        await pool.close();
      },
    };
  } catch (error) {
    await pool.close();
    throw error;
  }
}

/** One thread, unless `WORKER_MODEL_THREADS` asks for a pool. */
export function modelThreadCount(config: Pick<WorkerConfig, 'modelThreads' | 'modelThreadCount'>): number {
  return config.modelThreads ? config.modelThreadCount || availableParallelism() : 1;
}

async function openProvider(deps: ModelSourceDeps, load: (files: ArtifactFiles) => Promise<LoadedModel>): Promise<ClosableModelProvider> {
  const { config, logger } = deps;
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
    ...(config.tfBackend ? { backend: config.tfBackend } : {}),
  });
  try {
    await provider.start();
  } catch (error) {
    await provider.close();
    throw error;
  }
  return provider;
}
