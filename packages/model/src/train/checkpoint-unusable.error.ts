/**
 * Thrown when a run told to resume cannot resume its checkpoint: there is none, it was made with
 * other settings, on another split or for another network, or its files cannot be read. It would
 * be refused again, so a caller that retries should drop the checkpoint first and start over; any
 * other error of a resumed run leaves the checkpoint as good as it was.
 */
export class CheckpointUnusableError extends Error {
  /** The checkpoint folder that could not be resumed. */
  readonly checkpointDir: string;

  constructor(checkpointDir: string, cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'CheckpointUnusableError';
    this.checkpointDir = checkpointDir;
  }
}
