import path from 'node:path';
import { loadModel, type LoadedModel } from '@btd/model';
import { MODEL_TASKS, digestArtifact, once, readArtifactDirectory, type ArtifactFiles, type Logger, type ModelTask } from '@btd/shared';
import type { ModelLease, ModelProvider, ServedModel } from './model-provider.js';

/**
 * Serves fixed models from a directory laid out like `models/`: `<dir>/tumor-binary/`,
 * `<dir>/tumor-type/`. No reload; for local runs, tests and air-gapped installs.
 */
export class DirectoryModelProvider implements ModelProvider {
  private readonly models = new Map<ModelTask, ServedModel>();
  private readonly disposers: (() => void)[] = [];

  private constructor() {}

  /** Loads every task's artifact from `modelsDir`; fails if one is missing or broken. */
  static async load(
    modelsDir: string,
    logger: Logger,
    options: { tasks?: readonly ModelTask[]; load?: (files: ArtifactFiles) => Promise<LoadedModel> } = {},
  ): Promise<DirectoryModelProvider> {
    const provider = new DirectoryModelProvider();
    try {
      for (const task of options.tasks ?? MODEL_TASKS) await provider.loadTask(task, path.join(modelsDir, task), logger, options.load ?? loadModel);
    } catch (error) {
      await provider.close();
      throw error;
    }
    return provider;
  }

  private async loadTask(task: ModelTask, dir: string, logger: Logger, load: (files: ArtifactFiles) => Promise<LoadedModel>): Promise<void> {
    const files = await readArtifactDirectory(dir).catch((error: unknown) => {
      throw new Error(`cannot read the ${task} model at ${dir}: ${(error as Error).message}`, { cause: error });
    });
    const model = await load(files);
    this.disposers.push(() => model.dispose());
    const { contentHash } = digestArtifact(files);
    const version = model.manifest.version;
    // The provider owns the model's life: a caller's dispose() must not pull it from under other jobs.
    const served: ServedModel = Object.freeze({
      manifest: model.manifest,
      predict: model.predict.bind(model),
      dispose: () => {},
      task,
      version,
      contentHash,
    });
    this.models.set(task, served);
    logger.info({ task, modelVersion: version, dir }, 'model loaded');
  }

  current(task: ModelTask): ServedModel {
    const model = this.models.get(task);
    if (!model) throw new Error(`no model loaded for ${task}`);
    return model;
  }

  /** The folder's models are never replaced, so a lease holds nothing back. */
  acquire(task: ModelTask): ModelLease {
    return { model: this.current(task), release: () => {} };
  }

  /** Disposes every model; call after the worker has drained. Idempotent. */
  readonly close = once(async () => {
    this.models.clear();
    for (const dispose of this.disposers.splice(0)) dispose();
  });
}
