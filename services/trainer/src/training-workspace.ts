import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/** The folder under the trainer's work dir that holds one workspace per job. */
export const jobsDirOf = (workDir: string): string => path.resolve(workDir, 'jobs');

/** The name of a job's workspace folder: its id, with what a file name may not hold replaced. */
export const workspaceNameOf = (jobId: string): string => jobId.replace(/[^A-Za-z0-9_.-]/g, '_');

/**
 * A job's scratch folders under the trainer's work dir. The checkpoint folder outlives a crash or
 * restart of the trainer (so a retried job can resume); the output folder is always rebuilt.
 */
export class TrainingWorkspace {
  readonly root: string;
  readonly checkpointDir: string;
  readonly outDir: string;

  constructor(workDir: string, jobId: string) {
    this.root = path.join(jobsDirOf(workDir), workspaceNameOf(jobId));
    this.checkpointDir = path.join(this.root, 'checkpoint');
    this.outDir = path.join(this.root, 'artifact');
  }

  /** Whether an earlier attempt left a checkpoint to resume from. */
  async hasCheckpoint(): Promise<boolean> {
    const entries = await readdir(this.checkpointDir).catch(() => []);
    return entries.length > 0;
  }

  /** Empties the checkpoint folder, so the next run starts over. */
  async resetCheckpoint(): Promise<void> {
    await rm(this.checkpointDir, { recursive: true, force: true });
    await mkdir(this.checkpointDir, { recursive: true });
  }

  /** Empties the output folder: a model from an interrupted run is never published. */
  async resetOutput(): Promise<void> {
    await rm(this.outDir, { recursive: true, force: true });
    await mkdir(this.outDir, { recursive: true });
  }

  /** Removes everything of the job, once its result is recorded. */
  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}
