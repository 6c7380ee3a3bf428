import type { Redis } from 'ioredis';
import type { ObjectStore } from '../storage/object-store.js';
import { readArtifactDirectory, type ArtifactDigest, type ArtifactFiles } from './artifact-files.js';
import { subscribeToPromotions, type PromotionSubscription } from './promotion-channel.js';
import { findRollbackTarget, promoteVersion, readHistory, readPointer, type ArtifactCheck, type PromotionRequest } from './promotions.js';
import { getJsonOrNull, type RegistryContext } from './registry-context.js';
import { registryKeys } from './registry-keys.js';
import type { PromotionNotice, PromotionRecord, RefusalReport, VersionState, VersionStatus } from './registry.schemas.js';
import { ArtifactIntegrityError, ArtifactVerificationError, PromotionConflictError } from './registry.errors.js';
import { seedFromDirectory, type SeedOptions, type SeedOutcome } from './seed-registry.js';
import { listRefusals, readStatus, reportRefusal, writeStatus } from './version-status.js';
import * as versions from './model-versions.js';

/** Options of {@link ModelRegistry}. */
export interface ModelRegistryOptions {
  store: ObjectStore;
  /** Used for promotion locks and notices; a producer connection is fine. */
  redis: Redis;
  /** Scopes Redis keys and the channel (default `btd`); pass the queue prefix. */
  namespace?: string;
  /** Clock, replaceable in tests. */
  now?: () => Date;
}

/**
 * A listed version's state: its stored status, `promoted` when the pointer names it, or `corrupt`
 * when its manifest.json is gone from the store or changed. The last two are derived, never stored.
 */
export type ListedVersionState = VersionState | 'corrupt';

/** A version with its manifest metrics and status, as listed by {@link ModelRegistry.listVersions}. */
export interface VersionSummary {
  task: string;
  version: string;
  contentHash: string;
  /** Whether the task's pointer names this version. */
  promoted: boolean;
  state: ListedVersionState;
  /** Why it is in this state; for a corrupt version, what is wrong with it first. */
  reasons: string[];
  /** Null only for a corrupt version, which {@link ModelRegistry.listVersions} lists and {@link ModelRegistry.describe} refuses. */
  manifest: versions.RegistryManifest | null;
  gate?: unknown;
  source?: Record<string, unknown>;
}

/** Options of a manual promotion or rollback. */
export interface ManualPromotionOptions {
  by: string;
  reason: string;
  /**
   * Loads and probes the artifact first; a throw stops the promotion. An {@link ArtifactVerificationError}
   * (the artifact's fault) is also recorded as a refusal of the version; any other error (e.g.
   * `ModelRuntimeUnavailableError`) leaves the version as it was.
   */
  check?: ArtifactCheck;
  expectedCurrent?: string | null;
}

/**
 * Versioned model artifacts in the object store: immutable versions `models/<task>/<version>/`
 * with a content hash, one promotion pointer per task with an append-only history, per-version
 * status, and a Redis channel announcing promotions to the workers.
 */
export class ModelRegistry {
  private readonly ctx: RegistryContext;

  constructor(options: ModelRegistryOptions) {
    this.ctx = {
      store: options.store,
      redis: options.redis,
      namespace: options.namespace ?? 'btd',
      now: options.now ?? (() => new Date()),
    };
  }

  /** The namespace of Redis keys and of the promotion channel. */
  get namespace(): string {
    return this.ctx.namespace;
  }

  /** Publishes artifact files as a new candidate version (or returns the identical one already there). */
  async publish(task: string, files: ArtifactFiles, status: { reasons?: string[]; source?: Record<string, unknown>; gate?: unknown } = {}): Promise<versions.PublishedVersion> {
    // The status is written before the version is complete: a version that listings show has it,
    // so a publisher retried after an outage or a crash finds what it published by its source.
    return versions.publishArtifact(this.ctx, task, files, (version) => writeStatus(this.ctx, task, version, { state: 'candidate', ...status }));
  }

  /** Publishes an artifact directory; see {@link ModelRegistry.publish}. */
  async publishDirectory(task: string, dir: string, status: Parameters<ModelRegistry['publish']>[2] = {}): Promise<versions.PublishedVersion> {
    return this.publish(task, await readArtifactDirectory(dir), status);
  }

  /** Ids of the task's complete versions, oldest first (ids sort by publication time). */
  listVersionIds(task: string): Promise<string[]> {
    return versions.listVersionIds(this.ctx, task);
  }

  /**
   * Every version of a task with manifest, metrics and status, newest first. A version whose
   * manifest.json is gone from the store or changed is listed as `corrupt`, without its manifest,
   * rather than hiding the others.
   */
  async listVersions(task: string): Promise<VersionSummary[]> {
    const [ids, pointer] = await Promise.all([this.listVersionIds(task), readPointer(this.ctx, task)]);
    return Promise.all(ids.reverse().map((version) => this.summarise(task, version, pointer, 'list corrupt')));
  }

  /** One version with manifest and status; throws {@link ArtifactIntegrityError} when its manifest.json is gone from the store or changed. */
  describe(task: string, version: string, pointer?: PromotionRecord | null): Promise<VersionSummary> {
    return this.summarise(task, version, pointer, 'throw');
  }

  /** A version's digest, manifest, status and promotion; a corrupt manifest is either listed (`corrupt` state) or thrown. */
  private async summarise(task: string, version: string, pointer: PromotionRecord | null | undefined, corrupt: 'list corrupt' | 'throw'): Promise<VersionSummary> {
    const [digest, manifest, status, current] = await Promise.all([
      versions.readDigest(this.ctx, task, version),
      versions.readManifest(this.ctx, task, version).catch((error: unknown) => {
        if (corrupt === 'list corrupt' && error instanceof ArtifactIntegrityError) return error;
        throw error;
      }),
      readStatus(this.ctx, task, version),
      pointer === undefined ? readPointer(this.ctx, task) : Promise.resolve(pointer),
    ]);
    const promoted = current?.version === version;
    const corrupted = manifest instanceof ArtifactIntegrityError;
    return {
      task,
      version,
      contentHash: digest?.contentHash ?? '',
      promoted,
      state: corrupted ? 'corrupt' : promoted ? 'promoted' : (status?.state ?? 'candidate'),
      reasons: [...(corrupted ? [manifest.message] : []), ...(status?.reasons ?? [])],
      manifest: corrupted ? null : manifest,
      ...(status?.gate === undefined ? {} : { gate: status.gate }),
      ...(status?.source === undefined ? {} : { source: status.source }),
    };
  }

  /** The digest (content hash, per-file sizes and hashes) of a complete version, or null. */
  digest(task: string, version: string): Promise<ArtifactDigest | null> {
    return versions.readDigest(this.ctx, task, version);
  }

  /** Every file of a version, checked against its content hash; ready for `loadModel`. */
  fetchArtifact(task: string, version: string): Promise<versions.FetchedArtifact> {
    return versions.fetchArtifact(this.ctx, task, version);
  }

  /** The manifest of a version. */
  readManifest(task: string, version: string): Promise<versions.RegistryManifest> {
    return versions.readManifest(this.ctx, task, version);
  }

  /** One file of a version (report, plot, history). */
  readFile(task: string, version: string, name: string): Promise<Buffer> {
    return versions.readVersionFile(this.ctx, task, version, name);
  }

  /** The promotion the workers serve for a task, or null. */
  promoted(task: string): Promise<PromotionRecord | null> {
    return readPointer(this.ctx, task);
  }

  /** Promotion history of a task, newest first. */
  history(task: string, limit?: number): Promise<PromotionRecord[]> {
    return readHistory(this.ctx, task, limit);
  }

  /** Points the task at a version, after the optional check passes. */
  async promote(task: string, version: string, options: ManualPromotionOptions): Promise<PromotionRecord> {
    return this.promoteChecked({ task, version, action: 'promote', ...options }, options.check);
  }

  /**
   * Returns the task to its previous promotion (or `to`), after the optional check passes. The
   * target is chosen against the pointer as it is now, and the rollback only goes ahead while the
   * pointer still names that version: a promotion that lands during the check makes it fail with
   * {@link PromotionConflictError} instead of being undone.
   */
  async rollback(task: string, options: ManualPromotionOptions & { to?: string }): Promise<PromotionRecord> {
    const { version, current } = options.to === undefined
      ? await findRollbackTarget(this.ctx, task)
      : { version: options.to, current: (await readPointer(this.ctx, task))?.version ?? null };
    if (options.expectedCurrent !== undefined && options.expectedCurrent !== current) {
      throw new PromotionConflictError(task, options.expectedCurrent, current);
    }
    return this.promoteChecked({ task, version, action: 'rollback', ...options, expectedCurrent: current }, options.check);
  }

  private async promoteChecked(request: PromotionRequest, check?: ArtifactCheck): Promise<PromotionRecord> {
    if (check) {
      const artifact = await this.fetchArtifact(request.task, request.version);
      try {
        await check(artifact);
      } catch (error) {
        // Only the artifact's own fault refuses the version; a check that could not run (no model
        // runtime, an outage) says nothing about it.
        if (error instanceof ArtifactVerificationError) {
          await reportRefusal(this.ctx, request.task, request.version, request.by, error.message);
        }
        throw error;
      }
    }
    return promoteVersion(this.ctx, request);
  }

  /** Stored status of a version, or null. */
  status(task: string, version: string): Promise<VersionStatus | null> {
    return readStatus(this.ctx, task, version);
  }

  /** Updates a version's status (e.g. the gate's verdict). */
  setStatus(task: string, version: string, update: Parameters<typeof writeStatus>[3]): Promise<VersionStatus> {
    return writeStatus(this.ctx, task, version, update);
  }

  /** Records that `by` (a worker id) refused to serve a version, and why. */
  reportRefusal(task: string, version: string, by: string, reason: string): Promise<void> {
    return reportRefusal(this.ctx, task, version, by, reason);
  }

  /** Refusal reports of a version, oldest first. */
  refusals(task: string, version: string): Promise<RefusalReport[]> {
    return listRefusals(this.ctx, task, version);
  }

  /** Records what a training job produced, keyed by its job id. */
  async recordTraining<T>(task: string, jobId: string, outcome: T): Promise<void> {
    await this.ctx.store.putJson(registryKeys.training(task, jobId), outcome);
  }

  /** What a training job produced, or null when it has not finished. */
  readTraining<T>(task: string, jobId: string): Promise<T | null> {
    return getJsonOrNull<T>(this.ctx.store, registryKeys.training(task, jobId));
  }

  /** Publishes and promotes bundled models for tasks the registry has no version of. */
  seedFromDirectory(modelsDir: string, by?: string, options?: SeedOptions): Promise<SeedOutcome[]> {
    return seedFromDirectory(this.ctx, modelsDir, by, options);
  }

  /** Calls `onNotice` for every promotion announced on this registry's channel. */
  subscribe(onNotice: (notice: PromotionNotice) => void, onInvalid?: (raw: string) => void): Promise<PromotionSubscription> {
    return subscribeToPromotions(this.ctx.redis, this.ctx.namespace, onNotice, onInvalid);
  }
}
