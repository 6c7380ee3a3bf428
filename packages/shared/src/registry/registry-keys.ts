/**
 * Where the registry keeps things in the object store. Everything for a task lives below
 * `models/<task>/`; a version's prefix is written once and never changed afterwards, so all mutable
 * state (pointer, statuses, refusals) sits beside the versions rather than inside them.
 */

/** Registry version ids sort by publication time: `YYYYMMDDTHHMMSSZ-<first 8 hex digits of the content hash>`. */
export const VERSION_ID_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

/** Task names become key segments, so they are restricted to a safe alphabet. */
export const TASK_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Builds the version id for an artifact published at `at` with the given content hash. */
export function formatVersionId(at: Date, contentHash: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${contentHash.slice(0, 8)}`;
}

/** Whether `value` has the shape of a registry version id. */
export function isVersionId(value: string): boolean {
  return VERSION_ID_PATTERN.test(value);
}

/** Throws when `task` is not a usable task name. */
export function assertTaskName(task: string): void {
  if (!TASK_NAME_PATTERN.test(task)) throw new Error(`invalid task name: ${JSON.stringify(task)}`);
}

/** Throws when `version` is not a registry version id. */
export function assertVersionId(version: string): void {
  if (!isVersionId(version)) throw new Error(`invalid model version: ${JSON.stringify(version)}`);
}

/** Object keys of the registry layout. */
export const registryKeys = {
  root: 'models/',
  task: (task: string) => `models/${task}/`,
  version: (task: string, version: string) => `models/${task}/${version}/`,
  file: (task: string, version: string, name: string) => `models/${task}/${version}/${name}`,
  /** Written last when publishing: a version without it is incomplete and ignored. */
  digest: (task: string, version: string) => `models/${task}/${version}/content-hash.json`,
  pointer: (task: string) => `models/${task}/promoted.json`,
  promotions: (task: string) => `models/${task}/promotions/`,
  promotion: (task: string, at: Date, sequence: number) =>
    `models/${task}/promotions/${at.toISOString().replace(/[-:]/g, '')}-${String(sequence).padStart(6, '0')}.json`,
  /** Outcome of a training job, so a retried or duplicated job does not publish twice. */
  training: (task: string, jobId: string) => `models/${task}/trainings/${jobId.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`,
  status: (task: string, version: string) => `models/${task}/status/${version}.json`,
  refusals: (task: string, version: string) => `models/${task}/refusals/${version}/`,
  refusal: (task: string, version: string, at: Date, reporter: string) =>
    `models/${task}/refusals/${version}/${at.toISOString().replace(/[-:]/g, '')}-${reporter}.json`,
};

/** The file name (relative to the version prefix) of the digest written last on publish. */
export const DIGEST_FILE = 'content-hash.json';
