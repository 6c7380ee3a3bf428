import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { once, publishTrainerDatasets, withdrawTrainerDatasets, type DatasetRoot, type Logger, type Redis, type TrainerDatasets } from '@btd/shared';
import { datasetRootsOf } from './dataset-source.js';

/** How often a trainer refreshes what it publishes, and how long a publication outlives its last refresh. */
export const DATASET_PUBLICATION_DEFAULTS = Object.freeze({ intervalMs: 10_000, ttlMs: 30_000 });

/** What {@link publishDatasets} needs. */
export interface DatasetPublicationOptions {
  redis: Redis;
  /** `QUEUE_PREFIX`: the publication sits beside the training queue it drains. */
  prefix: string;
  /** `TRAINER_DATASET_ROOTS`, as configured. */
  datasetRoots: string;
  logger: Logger;
  intervalMs?: number;
  ttlMs?: number;
}

/** A trainer's running publication. */
export interface DatasetPublication {
  readonly trainer: string;
  /** Stops refreshing and removes the publication; idempotent. */
  close(): Promise<void>;
}

async function rootOf(root: string): Promise<DatasetRoot> {
  const absolute = path.resolve(root);
  const entries = await readdir(absolute, { withFileTypes: true }).catch(() => null);
  // A link to a folder is read as the folder (the loader follows it), so it counts as one.
  const folders = entries?.filter((entry) => entry.isDirectory() || entry.isSymbolicLink()).map((entry) => entry.name).sort() ?? null;
  return { path: absolute, folders };
}

/**
 * Publishes, in Redis, the trainer's dataset roots and the folders directly under them, and
 * refreshes it every `intervalMs` (a dataset copied in shows within that time): the API refuses a
 * training whose local folder no running trainer could read. The first publication is awaited.
 */
export async function publishDatasets(options: DatasetPublicationOptions): Promise<DatasetPublication> {
  const { redis, prefix, logger, intervalMs = DATASET_PUBLICATION_DEFAULTS.intervalMs, ttlMs = DATASET_PUBLICATION_DEFAULTS.ttlMs } = options;
  const trainer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const publish = async (): Promise<void> => {
    const roots = await Promise.all(datasetRootsOf(options.datasetRoots).map(rootOf));
    const datasets: TrainerDatasets = { trainer, cwd: process.cwd(), roots };
    await publishTrainerDatasets(redis, prefix, datasets, ttlMs);
  };
  await publish();
  const timer = setInterval(() => {
    // Redis away: the publication lapses and the API accepts trainings as it does with no trainer; the next refresh restores it.
    publish().catch((error: unknown) => logger.warn({ err: error }, 'could not publish the dataset roots'));
  }, intervalMs);
  timer.unref();
  return {
    trainer,
    close: once(async () => {
      clearInterval(timer);
      await withdrawTrainerDatasets(redis, prefix, trainer).catch((error: unknown) => logger.warn({ err: error }, 'could not withdraw the dataset roots; they expire'));
    }),
  };
}
