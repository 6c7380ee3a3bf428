import { PromotionLock, type LockLease } from './promotion-lock.js';
import { registryKeys } from './registry-keys.js';
import { getJsonOrNull, type RegistryContext } from './registry-context.js';
import type { RefusalReport, VersionState, VersionStatus } from './registry.schemas.js';

const MAX_REASONS = 20;

/**
 * How long a status write waits for the version's lock: its holders write one or two small objects,
 * but every worker refusing a broken promotion at once queues here, behind the promotion itself.
 */
const STATUS_LOCK_WAIT_MS = 30_000;

/** What a status write changes; fields it does not name keep their stored value. */
export interface StatusUpdate {
  state: VersionState;
  reasons?: string[];
  source?: Record<string, unknown>;
  gate?: unknown;
}

/** The stored status of a version, or null when none was written. */
export async function readStatus(ctx: RegistryContext, task: string, version: string): Promise<VersionStatus | null> {
  return getJsonOrNull<VersionStatus>(ctx.store, registryKeys.status(task, version));
}

/**
 * Runs `fn` holding the Redis lock of a version's status. A status is one S3 object that every
 * change reads, merges and writes back, and S3 has no compare-and-swap: two writers at once (two
 * workers refusing a version, a refusal and a promotion) would each write what they read and lose
 * the other's change.
 */
function withStatusLock<T>(ctx: RegistryContext, task: string, version: string, fn: (lease: LockLease) => Promise<T>): Promise<T> {
  const lock = new PromotionLock(ctx.redis, `${ctx.namespace}:registry:${task}:status-lock:${version}`, undefined, {
    busy: `another write of the status of ${task} version ${version} is in progress`,
    lock: `the status lock of ${task} version ${version}`,
    writes: 'its status',
  });
  return lock.withLock(task, fn, STATUS_LOCK_WAIT_MS);
}

/** Runs `fn` holding the status lock of each version, taken in the order given; `fn` gets their leases in that order. */
export async function withStatusLocks<T>(ctx: RegistryContext, task: string, versions: readonly string[], fn: (leases: LockLease[]) => Promise<T>): Promise<T> {
  // Each lock is taken inside the one before, so that all are held while `fn` runs.
  const holding = (held: LockLease[]): Promise<T> => {
    const version = versions[held.length];
    return version === undefined ? fn(held) : withStatusLock(ctx, task, version, (lease) => holding([...held, lease]));
  };
  return holding([]);
}

/**
 * Reads, merges and writes a version's status; the caller holds the version's status lock (see
 * {@link withStatusLocks}). `update` may be computed from the stored status.
 */
export async function updateStatusLocked(
  ctx: RegistryContext,
  task: string,
  version: string,
  lease: LockLease,
  update: StatusUpdate | ((previous: VersionStatus | null) => StatusUpdate),
): Promise<VersionStatus> {
  const previous = await readStatus(ctx, task, version);
  const change = typeof update === 'function' ? update(previous) : update;
  const status: VersionStatus = {
    ...previous,
    ...change,
    reasons: (change.reasons ?? previous?.reasons ?? []).slice(-MAX_REASONS),
    updatedAt: ctx.now().toISOString(),
  };
  await lease.assertHeld();
  await ctx.store.putJson(registryKeys.status(task, version), status);
  return status;
}

/** Changes a version's status under its lock, keeping fields the update does not name. */
export async function writeStatus(ctx: RegistryContext, task: string, version: string, update: StatusUpdate): Promise<VersionStatus> {
  return withStatusLock(ctx, task, version, (lease) => updateStatusLocked(ctx, task, version, lease, update));
}

const safeReporter = (by: string): string => by.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 80) || 'unknown';

/**
 * Records that a worker refused to serve a version. Each report is its own object, written first
 * and needing no lock; the status then adds the report's reason to those it holds, under the
 * version's lock, so workers refusing at the same moment each keep their reason.
 */
export async function reportRefusal(ctx: RegistryContext, task: string, version: string, by: string, reason: string): Promise<void> {
  const at = ctx.now();
  const report: RefusalReport = { by, reason, at: at.toISOString() };
  await ctx.store.putJson(registryKeys.refusal(task, version, at, safeReporter(by)), report);
  const line = `refused by ${by}: ${reason}`;
  await withStatusLock(ctx, task, version, (lease) =>
    updateStatusLocked(ctx, task, version, lease, (previous) => ({
      state: 'refused',
      reasons: [...new Set([...(previous?.reasons ?? []), line])],
    })),
  );
}

/** Refusal reports of a version, oldest first. */
export async function listRefusals(ctx: RegistryContext, task: string, version: string): Promise<RefusalReport[]> {
  const keys = (await ctx.store.listKeys(registryKeys.refusals(task, version))).sort();
  const reports = await Promise.all(keys.map((key) => getJsonOrNull<RefusalReport>(ctx.store, key)));
  return reports.filter((report): report is RefusalReport => report !== null);
}
