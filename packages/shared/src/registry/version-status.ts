import { registryKeys } from './registry-keys.js';
import { getJsonOrNull, type RegistryContext } from './registry-context.js';
import type { RefusalReport, VersionState, VersionStatus } from './registry.schemas.js';

const MAX_REASONS = 20;

/** The stored status of a version, or null when none was written. */
export async function readStatus(ctx: RegistryContext, task: string, version: string): Promise<VersionStatus | null> {
  return getJsonOrNull<VersionStatus>(ctx.store, registryKeys.status(task, version));
}

/** Changes a version's status, keeping fields the update does not name. */
export async function writeStatus(
  ctx: RegistryContext,
  task: string,
  version: string,
  update: { state: VersionState; reasons?: string[]; source?: Record<string, unknown>; gate?: unknown },
): Promise<VersionStatus> {
  const previous = await readStatus(ctx, task, version);
  const status: VersionStatus = {
    ...previous,
    ...update,
    reasons: (update.reasons ?? previous?.reasons ?? []).slice(-MAX_REASONS),
    updatedAt: ctx.now().toISOString(),
  };
  await ctx.store.putJson(registryKeys.status(task, version), status);
  return status;
}

const safeReporter = (by: string): string => by.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 80) || 'unknown';

/**
 * Records that a worker refused to serve a version. Each report is its own object, so workers
 * reporting at the same moment cannot overwrite each other; the status summarises the latest.
 */
export async function reportRefusal(ctx: RegistryContext, task: string, version: string, by: string, reason: string): Promise<void> {
  const at = ctx.now();
  const report: RefusalReport = { by, reason, at: at.toISOString() };
  await ctx.store.putJson(registryKeys.refusal(task, version, at, safeReporter(by)), report);
  const previous = await readStatus(ctx, task, version);
  const reasons = [...new Set([...(previous?.reasons ?? []), `refused by ${by}: ${reason}`])];
  await writeStatus(ctx, task, version, { state: 'refused', reasons });
}

/** Refusal reports of a version, oldest first. */
export async function listRefusals(ctx: RegistryContext, task: string, version: string): Promise<RefusalReport[]> {
  const keys = (await ctx.store.listKeys(registryKeys.refusals(task, version))).sort();
  const reports = await Promise.all(keys.map((key) => getJsonOrNull<RefusalReport>(ctx.store, key)));
  return reports.filter((report): report is RefusalReport => report !== null);
}
