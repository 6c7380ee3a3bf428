import { announcePromotion } from './promotion-channel.js';
import { PromotionLock, type LockLease } from './promotion-lock.js';
import { assertTaskName, registryKeys } from './registry-keys.js';
import { getJsonOrNull, type RegistryContext } from './registry-context.js';
import { NoRollbackTargetError, PromotionConflictError, VersionNotFoundError } from './registry.errors.js';
import type { PromotionAction, PromotionRecord } from './registry.schemas.js';
import { readDigest, type FetchedArtifact } from './model-versions.js';
import { updateStatusLocked, withStatusLocks, type StatusUpdate } from './version-status.js';

/** Checks an artifact before it is promoted (loads it, runs its probe); throws to refuse. */
export type ArtifactCheck = (artifact: FetchedArtifact) => Promise<void>;

/** A request to point a task at a version. */
export interface PromotionRequest {
  task: string;
  version: string;
  by: string;
  reason: string;
  action?: PromotionAction;
  /**
   * The version the caller believes is current (null: none). When given and the pointer moved
   * meanwhile, the promotion fails with {@link PromotionConflictError} instead of overwriting it.
   */
  expectedCurrent?: string | null;
}

const lockFor = (ctx: RegistryContext, task: string): PromotionLock =>
  new PromotionLock(ctx.redis, `${ctx.namespace}:registry:${task}:promotion-lock`);

/** The promotion the task's workers serve, or null before the first one. */
export async function readPointer(ctx: RegistryContext, task: string): Promise<PromotionRecord | null> {
  assertTaskName(task);
  return getJsonOrNull<PromotionRecord>(ctx.store, registryKeys.pointer(task));
}

/**
 * Points a task at a version. Under the task's Redis lock: read the pointer, check the caller's
 * expectation, append the history record, then overwrite the pointer (a single PUT, which readers
 * see whole or not at all) and write the statuses under their own locks. The notice goes out after
 * the lock is released.
 */
export async function promoteVersion(ctx: RegistryContext, request: PromotionRequest): Promise<PromotionRecord> {
  const { task, version } = request;
  const digest = await readDigest(ctx, task, version);
  if (!digest) throw new VersionNotFoundError(task, version);
  const { record, changed } = await lockFor(ctx, task).withLock(task, async (lease) => {
    const current = await readPointer(ctx, task);
    const currentVersion = current?.version ?? null;
    if (request.expectedCurrent !== undefined && request.expectedCurrent !== currentVersion) {
      throw new PromotionConflictError(task, request.expectedCurrent, currentVersion);
    }
    if (current && currentVersion === version) return { record: current, changed: false };
    const at = ctx.now();
    const next: PromotionRecord = {
      task,
      version,
      contentHash: digest.contentHash,
      action: request.action ?? 'promote',
      by: request.by,
      reason: request.reason,
      at: at.toISOString(),
      previousVersion: currentVersion,
      sequence: (current?.sequence ?? 0) + 1,
    };
    await movePointer(ctx, lease, next);
    return { record: next, changed: true };
  });
  if (changed) await announce(ctx, record);
  return record;
}

/**
 * Appends the history record, overwrites the pointer and writes the statuses of the versions it
 * names, holding the task's promotion lock (`lease`). The statuses are locked before the pointer
 * moves: a worker that sees the new pointer and refuses the version writes its refusal after the
 * promotion's status, not under it.
 */
async function movePointer(ctx: RegistryContext, lease: LockLease, next: PromotionRecord): Promise<void> {
  const statuses = statusesOf(next);
  await withStatusLocks(ctx, next.task, statuses.map(([version]) => version), async (statusLeases) => {
    // Each write only while the lock is still ours: a lapsed lease may have let another promoter in.
    await lease.assertHeld();
    await ctx.store.putJson(registryKeys.promotion(next.task, new Date(next.at), next.sequence), next);
    await lease.assertHeld();
    await ctx.store.putJson(registryKeys.pointer(next.task), next);
    // Under the promotion lock: the statuses of two promotions close together land in their order.
    for (const [i, [version, update]] of statuses.entries()) await updateStatusLocked(ctx, next.task, version, statusLeases[i]!, update);
  });
}

/** The statuses a promotion writes: the promoted version's, then that of the one it replaced. */
function statusesOf(record: PromotionRecord): [string, StatusUpdate][] {
  const statuses: [string, StatusUpdate][] = [[record.version, { state: 'promoted', reasons: [] }]];
  if (record.previousVersion) {
    const why = record.action === 'rollback' ? `rolled back to ${record.version}` : `replaced by ${record.version}`;
    statuses.push([record.previousVersion, { state: 'retired', reasons: [why] }]);
  }
  return statuses;
}

async function announce(ctx: RegistryContext, record: PromotionRecord): Promise<void> {
  const { task, version, contentHash, sequence, action } = record;
  try {
    await announcePromotion(ctx.redis, ctx.namespace, { task, version, contentHash, sequence, action });
  } catch {
    // The pointer is already written; workers that miss the notice find it by polling.
  }
}

/** The sequence number a history key ends with (`<time>-<sequence>.json`), or -1 for a key of another shape. */
function sequenceOfKey(key: string): number {
  const match = /-(\d+)\.json$/.exec(key);
  return match ? Number(match[1]) : -1;
}

/**
 * The task's promotion history, newest first: by sequence number, which each promotion takes from
 * the pointer under the lock. The time in a key is the promoter's clock, and promoters on hosts
 * whose clocks disagree would put their records out of order.
 */
export async function readHistory(ctx: RegistryContext, task: string, limit = 50): Promise<PromotionRecord[]> {
  assertTaskName(task);
  const keys = (await ctx.store.listKeys(registryKeys.promotions(task)))
    .sort((a, b) => sequenceOfKey(b) - sequenceOfKey(a) || b.localeCompare(a))
    .slice(0, limit);
  const records = await Promise.all(keys.map((key) => getJsonOrNull<PromotionRecord>(ctx.store, key)));
  return records.filter((record): record is PromotionRecord => record !== null);
}

/** What a rollback goes back to, and the version it goes back from (the pointer's when the target was chosen). */
export interface RollbackTarget {
  version: string;
  current: string | null;
}

/**
 * The version a rollback returns to: the most recent earlier promotion that is neither the current
 * version (the pointer's) nor one that was itself rolled back from, so repeated rollbacks walk back
 * in time instead of flipping between two versions, nor one removed from the registry since. `current` is the version it was chosen
 * against: a rollback passes it as `expectedCurrent`, so a promotion landing meanwhile is not undone.
 */
export async function findRollbackTarget(ctx: RegistryContext, task: string): Promise<RollbackTarget> {
  const [pointer, history] = await Promise.all([readPointer(ctx, task), readHistory(ctx, task, 1000)]);
  const current = pointer?.version ?? null;
  const rolledBackFrom = new Set(
    history.filter((r) => r.action === 'rollback' && r.previousVersion).map((r) => r.previousVersion as string),
  );
  for (const record of history) {
    if (record.version === current || rolledBackFrom.has(record.version)) continue;
    // A version removed from the registry since (its digest deleted) can never be served again: the rollback goes further back.
    if (await readDigest(ctx, task, record.version)) return { version: record.version, current };
  }
  throw new NoRollbackTargetError(task);
}
