import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { createTrainingQueue, type Redis, type TrainingJobHandle } from '@btd/shared';
import type { JobState } from 'bullmq';
import { TrainingWorkspace, jobsDirOf, workspaceNameOf } from './training-workspace.js';

/**
 * The states of a job that a trainer may still run, this one or another, resuming the checkpoint
 * of its workspace: taken, waiting (by priority or not), or handed back (delayed).
 */
const UNFINISHED = ['active', 'waiting', 'prioritized', 'delayed', 'waiting-children'] as const satisfies readonly JobState[];

const isUnfinished = (state: JobState | 'unknown'): boolean => (UNFINISHED as readonly string[]).includes(state);

/**
 * Removes the workspace of a job that failed, once the failure is its last: the job is failed for
 * good, or gone. BullMQ fails some jobs without running the processor, which removes the workspace
 * of those it fails itself: one whose trainer was killed too often while it ran it (`job stalled
 * more than allowable limit`). A job retried (delayed or waiting again) keeps its checkpoint.
 * Answers whether the workspace was removed.
 */
export async function removeWorkspaceIfFinished(job: TrainingJobHandle, workDir: string): Promise<boolean> {
  if (job.id === undefined || isUnfinished(await job.getState())) return false;
  await new TrainingWorkspace(workDir, job.id).remove();
  return true;
}

/**
 * Removes the workspaces of jobs that no trainer will resume: finished (completed or failed) or no
 * longer in the queue. Some end where no trainer can clean up after them: a training cancelled while
 * handed back (at a shutdown, during an S3 outage, waiting for a dataset) is taken off the queue by
 * the API, a trainer killed leaves what it was removing, and one that shares no work dir with the
 * trainer that failed a job never hears of it. Workspaces of unfinished jobs are kept, whichever
 * trainer is to resume them. Answers the names of the folders removed.
 */
export async function sweepFinishedWorkspaces(connection: Redis, prefix: string, workDir: string): Promise<string[]> {
  const jobsDir = jobsDirOf(workDir);
  const entries = await readdir(jobsDir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const folders = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  if (folders.length === 0) return [];
  // Listed after the folders, in one script: a job unfinished then is seen in one of its states, even
  // one moving between them as it is listed.
  const queue = createTrainingQueue(connection, prefix);
  let unfinished: Set<string>;
  try {
    unfinished = new Set((await queue.getRanges([...UNFINISHED], 0, -1)).map(workspaceNameOf));
  } finally {
    await queue.close();
  }
  const stale = folders.filter((name) => !unfinished.has(name));
  for (const name of stale) await rm(path.join(jobsDir, name), { recursive: true, force: true });
  return stale;
}
