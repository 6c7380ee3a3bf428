import { access } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_TASKS } from '../model-task.js';
import { readArtifactDirectory } from './artifact-files.js';
import { PromotionLock } from './promotion-lock.js';
import { publishArtifact } from './model-versions.js';
import { promoteVersion, readPointer } from './promotions.js';
import type { RegistryContext } from './registry-context.js';

/** What seeding did for one task. */
export interface SeedOutcome {
  task: string;
  /** `seeded`: published (or found published) and promoted; `present`: the task already had a promoted version; `missing`: no bundled model. */
  outcome: 'seeded' | 'present' | 'missing';
  version?: string;
}

async function hasManifest(dir: string): Promise<boolean> {
  try {
    await access(path.join(dir, 'manifest.json'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Seeds one task unless it already has a promoted version. Whether any version exists decides
 * nothing: a seed interrupted between publishing and promoting (an S3 outage, a process killed)
 * leaves a version and no pointer, and workers cannot start on that. Publishing the same bytes
 * again returns the version already there, so such a seed is finished, not repeated.
 */
async function seedTask(ctx: RegistryContext, modelsDir: string, task: string, by: string): Promise<SeedOutcome> {
  if (await readPointer(ctx, task)) return { task, outcome: 'present' };
  const dir = path.join(modelsDir, task);
  if (!(await hasManifest(dir))) return { task, outcome: 'missing' };
  const published = await publishArtifact(ctx, task, await readArtifactDirectory(dir));
  await promoteVersion(ctx, {
    task,
    version: published.version,
    by,
    reason: `bundled model from ${dir}`,
    action: 'seed',
    expectedCurrent: null,
  });
  return { task, outcome: 'seeded', version: published.version };
}

/** Options of {@link seedFromDirectory}. */
export interface SeedOptions {
  /** How long to wait for a task's seed lock while another worker or trainer seeds it (default 120 s). */
  lockWaitMs?: number;
}

const SEED_LOCK_MS = 120_000;

/** A task's seed lock, whose errors speak of seeding the task, not of promoting it. */
function seedLock(ctx: RegistryContext, task: string): PromotionLock {
  return new PromotionLock(ctx.redis, `${ctx.namespace}:registry:${task}:seed-lock`, SEED_LOCK_MS, {
    busy: `another worker or trainer is seeding ${task} from its bundled model`,
    lock: `the seed lock of ${task}`,
    writes: 'its bundled model',
  });
}

/**
 * Publishes and promotes the bundled `models/<task>/` artifact of every task that has no promoted
 * version yet. Several workers starting together serialise on a Redis lock, so exactly
 * one of them seeds; one that waits longer than `lockWaitMs` for it throws
 * `PromotionLockTimeoutError` saying that another worker or trainer is seeding the task.
 */
export async function seedFromDirectory(ctx: RegistryContext, modelsDir: string, by = 'seed', options: SeedOptions = {}): Promise<SeedOutcome[]> {
  const outcomes: SeedOutcome[] = [];
  for (const task of MODEL_TASKS) {
    outcomes.push(await seedLock(ctx, task).withLock(task, () => seedTask(ctx, modelsDir, task, by), options.lockWaitMs ?? SEED_LOCK_MS));
  }
  return outcomes;
}
