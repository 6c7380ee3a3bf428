import { canReadDatasetFolder, liveTrainerDatasets, type DatasetRoot, type Redis } from '@btd/shared';
import { ApiError } from '../errors/api-error.js';

/** Folder names shown per root in a refusal; a root may hold many. */
const FOLDERS_SHOWN = 20;

function describeRoot(root: DatasetRoot): string {
  if (root.folders === null) return `${root.path} (missing)`;
  if (root.folders.length === 0) return `${root.path} (empty)`;
  const more = root.folders.length > FOLDERS_SHOWN ? `, and ${root.folders.length - FOLDERS_SHOWN} more` : '';
  return `${root.path} (${root.folders.slice(0, FOLDERS_SHOWN).join(', ')}${more})`;
}

/**
 * Refuses, with 422 `dataset_not_available`, a local dataset folder that no running trainer could
 * read, from what each publishes in Redis (the API does not share their file systems). With no
 * trainer running nothing is known: the training is queued, and the trainer that takes it checks
 * the folder then.
 */
export async function assertDatasetFolderAvailable(redis: Redis, prefix: string, folder: string): Promise<void> {
  const trainers = await liveTrainerDatasets(redis, prefix);
  if (trainers.length === 0 || trainers.some((trainer) => canReadDatasetFolder(trainer, folder))) return;
  const roots = [...new Set(trainers.flatMap((trainer) => trainer.roots.map(describeRoot)))];
  const cwds = [...new Set(trainers.map((trainer) => trainer.cwd))];
  throw new ApiError(
    422,
    'dataset_not_available',
    `dataset folder ${folder} is not available to any running trainer: a local dataset must be a folder under the trainer's TRAINER_DATASET_ROOTS, ` +
      `${roots.length > 0 ? roots.join('; ') : 'none set'}; a relative path is read from the trainer's working directory (${cwds.join(', ')})`,
  );
}
