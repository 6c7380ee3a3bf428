import { EventEmitter } from 'node:events';
import { loadModel, type LoadedModel } from '@btd/model';
import {
  ArtifactIntegrityError,
  ArtifactVerificationError,
  DIGEST_FILE,
  MODEL_TASKS,
  ModelRuntimeUnavailableError,
  once,
  VersionNotFoundError,
  verifyArtifact,
  type ArtifactFiles,
  type Logger,
  type ModelRegistry,
  type ModelTask,
  type PromotionSubscription,
} from '@btd/shared';
import { Counter, Gauge, type Registry as MetricsRegistry } from 'prom-client';
import { ArtifactVerifierThread } from './artifact-verifier-thread.js';
import { ModelSlot, type ServedModel } from './model-slot.js';
import type { Backend } from './model-thread-pool.js';

export type { ServedModel } from './model-slot.js';

/** A hold on a served model: it is not disposed before `release()`, even after a swap. */
export interface ModelLease {
  readonly model: ServedModel;
  release(): void;
}

/** Gives a job the models to run; a job takes its models once, at its start. */
export interface ModelProvider {
  /** The current model, kept loaded (even when a promotion replaces it) until the lease is released. */
  acquire(task: ModelTask): ModelLease;
}

/** Options of {@link RegistryModelProvider}. */
export interface RegistryModelProviderOptions {
  registry: ModelRegistry;
  logger: Logger;
  /** Names this worker in refusal reports. */
  workerId: string;
  tasks?: readonly ModelTask[];
  /** Bundled artifacts published when the registry has no version of a task. */
  modelsDir?: string;
  /** Fallback for missed notices: how often the pointers are read (default 30 s). */
  pollIntervalMs?: number;
  /** How long a replaced model stays loaded for jobs that took it with `current()` rather than a lease: longer than a job lasts (default 30 s). */
  disposeGraceMs?: number;
  /** Probe tolerance per class probability (default 0.01). */
  tolerance?: number;
  metrics?: MetricsRegistry;
  load?: (files: ArtifactFiles) => Promise<LoadedModel>;
  /**
   * Verify promoted versions on a separate thread (default true), so the probe does not take CPU
   * from this thread's jobs; this thread then only loads a version that passed.
   */
  verifyOnThread?: boolean;
  /** The backend the models are served on (`TF_BACKEND`), which the verifier thread then uses too. */
  backend?: Backend;
}

function createMetrics(registry: MetricsRegistry | undefined) {
  const registers = registry ? [registry] : [];
  return {
    swaps: new Counter({ name: 'btd_model_swaps_total', help: 'Promoted models swapped in', labelNames: ['task'], registers }),
    refusals: new Counter({ name: 'btd_model_refusals_total', help: 'Promoted models refused: by verification, or as gone from the bucket', labelNames: ['task'], registers }),
    served: new Gauge({ name: 'btd_model_served_info', help: 'Model version served (value 1)', labelNames: ['task', 'version', 'content_hash'], registers }),
  };
}

/**
 * Whether an error loading a version is the version's own fault, which refuses it: it does not
 * verify, its files are gone or changed, or it is gone whole (the pointer and the history only
 * name versions whose digest was written, so one not found since was removed from the bucket).
 */
const isRefusal = (error: unknown): boolean =>
  error instanceof ArtifactVerificationError || error instanceof ArtifactIntegrityError || error instanceof VersionNotFoundError;

/** Why a version was refused, as logged and recorded in the registry. */
function refusalReason(error: Error): string {
  if (error instanceof ArtifactVerificationError) return error.reason;
  if (error instanceof VersionNotFoundError) return `removed from the registry: ${DIGEST_FILE} is missing from the store`;
  return error.message;
}

/**
 * Serves the promoted model of each task from the registry and follows promotions: a notice on
 * the promotion channel (or the periodic poll) starts a background load, the new version is
 * verified (loads, input shape, probe output) and swapped in between jobs; the old one is
 * disposed once the jobs that took it are done. A version that fails verification, or whose files
 * are gone from the bucket, is refused, reported, and the old model keeps serving; at start, the
 * newest earlier promotion that verifies is served instead.
 *
 * Events: `swapped` `{ task, from, to, tookMs }`, `refused` `{ task, version, reason }`.
 */
export class RegistryModelProvider extends EventEmitter implements ModelProvider {
  private readonly slots = new Map<ModelTask, ModelSlot>();
  private readonly retired = new Set<ModelSlot>();
  private readonly refused = new Map<ModelTask, string>();
  private readonly checks = new Map<ModelTask, Promise<void>>();
  private readonly metrics: ReturnType<typeof createMetrics>;
  private subscription: PromotionSubscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private verifier: ArtifactVerifierThread | undefined;

  constructor(private readonly options: RegistryModelProviderOptions) {
    super();
    this.metrics = createMetrics(options.metrics);
  }

  private get tasks(): readonly ModelTask[] {
    return this.options.tasks ?? MODEL_TASKS;
  }

  /** Seeds an empty registry, loads the promoted versions, then follows promotions. */
  async start(): Promise<void> {
    const { registry, logger, modelsDir } = this.options;
    if (modelsDir) logger.info({ seeded: await registry.seedFromDirectory(modelsDir, this.options.workerId) }, 'model registry checked');
    for (const task of this.tasks) await this.loadInitial(task);
    if (this.options.verifyOnThread !== false) this.verifier = new ArtifactVerifierThread(this.options.backend);
    this.subscription = await registry.subscribe(
      (notice) => {
        const task = this.tasks.find((t) => t === notice.task);
        if (task) void this.refresh(task);
      },
      (raw) => logger.warn({ raw: raw.slice(0, 200) }, 'ignored a malformed promotion notice'),
    );
    this.timer = setInterval(() => this.tasks.forEach((task) => void this.refresh(task)), this.options.pollIntervalMs ?? 30_000);
    this.timer.unref();
  }

  /** The model a job should use for a task; take it once, at the job's start. */
  current(task: ModelTask): ServedModel {
    const slot = this.slots.get(task);
    if (!slot) throw new Error(`no model loaded for ${task}`);
    return slot.served;
  }

  /** Like {@link current}, and keeps the model loaded until `release()`. */
  acquire(task: ModelTask): ModelLease {
    const slot = this.slots.get(task);
    if (!slot) throw new Error(`no model loaded for ${task}`);
    slot.leases += 1;
    let released = false;
    return {
      model: slot.served,
      release: () => {
        if (released) return;
        released = true;
        slot.leases -= 1;
        slot.disposeIfIdle();
      },
    };
  }

  /** Version and content hash served per task. */
  snapshot(): Record<string, { version: string; contentHash: string }> {
    return Object.fromEntries([...this.slots].map(([task, slot]) => [task, { version: slot.served.version, contentHash: slot.served.contentHash }]));
  }

  /** Reads the task's pointer now and swaps if it names another version; concurrent calls queue up. */
  refresh(task: ModelTask): Promise<void> {
    const previous = this.checks.get(task) ?? Promise.resolve();
    const next = previous.then(() => this.check(task)).catch((error: unknown) => {
      this.options.logger.warn({ err: error, task }, 'could not check the promoted model; will retry on the next poll');
    });
    this.checks.set(task, next);
    return next;
  }

  private async check(task: ModelTask): Promise<void> {
    if (this.closed) return;
    const pointer = await this.options.registry.promoted(task);
    const current = this.slots.get(task)?.served.version;
    if (!pointer || pointer.version === current || this.refused.get(task) === pointer.version) return;
    const started = performance.now();
    try {
      const slot = await this.loadVerified(task, pointer.version);
      if (this.closed) return slot.disposeIfIdle(true);
      this.install(task, slot);
      const tookMs = Math.round(performance.now() - started);
      this.options.logger.info({ task, modelVersion: pointer.version, from: current, tookMs }, 'promoted model swapped in');
      this.emit('swapped', { task, from: current, to: pointer.version, tookMs });
    } catch (error) {
      if (!isRefusal(error)) throw error;
      await this.refuse(task, pointer.version, error as Error);
    }
  }

  /**
   * Loading a model and running its probe each hold the event loop for tens to hundreds of
   * milliseconds; starting them while no job holds a model (a job leases both from its start to its
   * end, a replaced version's as well) keeps them out of the jobs' way. Waits at most `maxWaitMs`,
   * so a busy worker still swaps promptly.
   */
  private async betweenJobs(maxWaitMs = 500): Promise<void> {
    const deadline = performance.now() + maxWaitMs;
    const busy = () => [...this.slots.values(), ...this.retired].some((slot) => slot.leases > 0);
    while (busy() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  private async loadVerified(task: ModelTask, version: string): Promise<ModelSlot> {
    const artifact = await this.options.registry.fetchArtifact(task, version);
    if (this.verifier && (await this.verifiedOnThread(task, version, artifact.files))) {
      await this.betweenJobs();
      return new ModelSlot(task, version, artifact.contentHash, await this.loadPassed(task, version, artifact.files), this.options.disposeGraceMs ?? 30_000);
    }
    await this.betweenJobs();
    const model = await verifyArtifact(artifact.files, {
      task,
      version,
      load: this.options.load ?? loadModel,
      beforeProbe: () => this.betweenJobs(),
      ...(this.options.tolerance === undefined ? {} : { tolerance: this.options.tolerance }),
    });
    return new ModelSlot(task, version, artifact.contentHash, model, this.options.disposeGraceMs ?? 30_000);
  }

  /**
   * True when the verifier thread passed the version; throws its refusal. When the thread itself
   * fails, the artifact is not to blame: verification falls back to this thread from then on.
   */
  private async verifiedOnThread(task: ModelTask, version: string, files: ArtifactFiles): Promise<boolean> {
    try {
      const backend = await this.verifier?.verify(task, version, files, this.options.tolerance);
      this.options.logger.debug({ task, version, backend }, 'version passed verification on the verifier thread');
      return true;
    } catch (error) {
      if (error instanceof ArtifactVerificationError) throw error;
      this.options.logger.warn({ err: error }, 'artifact verifier thread failed; verifying on the serving thread');
      const verifier = this.verifier;
      this.verifier = undefined;
      await verifier?.close();
      return false;
    }
  }

  /** Loads a version the verifier thread passed; the loader still checks weights and shapes. */
  private async loadPassed(task: ModelTask, version: string, files: ArtifactFiles): Promise<LoadedModel> {
    try {
      return await (this.options.load ?? loadModel)(files);
    } catch (error) {
      if (error instanceof ModelRuntimeUnavailableError) throw error;
      throw new ArtifactVerificationError(task, version, `does not load: ${(error as Error).message}`, { cause: error });
    }
  }

  private install(task: ModelTask, slot: ModelSlot): void {
    const old = this.slots.get(task);
    this.slots.set(task, slot);
    if (old) {
      this.metrics.swaps.inc({ task });
      this.metrics.served.remove({ task, version: old.served.version, content_hash: old.served.contentHash });
      old.retire();
      for (const slot of this.retired) if (slot.isDisposed) this.retired.delete(slot);
      this.retired.add(old);
    }
    this.metrics.served.set({ task, version: slot.served.version, content_hash: slot.served.contentHash }, 1);
  }

  private async refuse(task: ModelTask, version: string, error: Error): Promise<void> {
    this.refused.set(task, version);
    this.metrics.refusals.inc({ task });
    const reason = refusalReason(error);
    this.options.logger.error({ task, modelVersion: version, reason, serving: this.slots.get(task)?.served.version }, 'promoted model refused');
    this.emit('refused', { task, version, reason });
    await this.options.registry.reportRefusal(task, version, this.options.workerId, reason).catch((reportError: unknown) => {
      this.options.logger.warn({ err: reportError, task, modelVersion: version }, 'could not record the refusal in the registry');
    });
  }

  /** At start there is no old model to fall back on: serve the newest promotion that verifies. */
  private async loadInitial(task: ModelTask): Promise<void> {
    const { registry } = this.options;
    const pointer = await registry.promoted(task);
    if (!pointer) throw new Error(`the registry has no promoted ${task} model; publish one or set MODELS_DIR`);
    const candidates = [pointer.version, ...(await registry.history(task)).map((r) => r.version)];
    for (const version of new Set(candidates)) {
      try {
        this.install(task, await this.loadVerified(task, version));
        this.options.logger.info({ task, modelVersion: version, promoted: pointer.version }, 'model loaded');
        return;
      } catch (error) {
        if (!isRefusal(error)) throw error;
        await this.refuse(task, version, error as Error);
      }
    }
    throw new Error(`no promoted version of ${task} passes verification`);
  }

  /** Stops following promotions and disposes every model; call after the worker has drained. Idempotent. */
  readonly close = once(async () => {
    this.closed = true;
    clearInterval(this.timer);
    await this.subscription?.close();
    await Promise.allSettled(this.checks.values());
    await this.verifier?.close();
    for (const slot of [...this.slots.values(), ...this.retired]) {
      slot.retire();
      slot.disposeIfIdle(true);
    }
    this.slots.clear();
    this.retired.clear();
  });
}
