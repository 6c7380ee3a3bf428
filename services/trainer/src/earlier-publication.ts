import { formatVersionId, type ModelRegistry, type VersionStatus } from '@btd/shared';

/** A version an earlier attempt of a training job published, with the status it recorded. */
export interface EarlierPublication {
  version: string;
  contentHash: string;
  status: VersionStatus;
}

/** Clocks of the API and the trainers may disagree; versions this much older than the job are still looked at. */
const CLOCK_SKEW_MS = 24 * 60 * 60 * 1000;

/**
 * Finds the version an earlier attempt of the job published (its status names the job as its
 * source), so a retried job finishes that one instead of publishing a second. Only versions
 * published since the job was created are read.
 */
export async function findEarlierPublication(
  registry: ModelRegistry,
  task: string,
  jobId: string,
  createdAt: number | undefined,
): Promise<EarlierPublication | null> {
  const since = Number.isFinite(createdAt) ? formatVersionId(new Date((createdAt as number) - CLOCK_SKEW_MS), '') : '';
  const candidates = (await registry.listVersionIds(task)).filter((version) => version >= since).reverse();
  for (const version of candidates) {
    const status = await registry.status(task, version);
    const source = status?.source;
    if (!status || source?.kind !== 'training' || source.jobId !== jobId) continue;
    const digest = await registry.digest(task, version);
    if (digest) return { version, contentHash: digest.contentHash, status };
  }
  return null;
}
