import { datasetFolderAccess, liveTrainerDatasets, type DatasetRoot, type Redis } from '@btd/shared';
import { ApiError } from '../errors/api-error.js';

/** Folder names shown per folder in a refusal; a root may hold many. */
const FOLDERS_SHOWN = 20;

function namesOf(folders: readonly string[]): string {
  const more = folders.length > FOLDERS_SHOWN ? `, and ${folders.length - FOLDERS_SHOWN} more` : '';
  return `${folders.slice(0, FOLDERS_SHOWN).join(', ')}${more}`;
}

function describeRoot(root: DatasetRoot): string {
  if (root.folders === null) return `${root.path} (missing)`;
  if (root.unlisted?.includes('')) return `${root.path} (too large to list)`;
  const top = root.folders.filter((folder) => !folder.includes('/'));
  return `${root.path} (${top.length === 0 ? 'empty' : namesOf(top)})`;
}

/**
 * Refuses, with 422 `dataset_not_available`, a local dataset folder that no running trainer could
 * read, from what each publishes in Redis (the API does not share their file systems): outside
 * their roots, missing from a folder whose sub-folders they all publish, or led out of their roots
 * by a link (to /etc, another disk). A folder under one
 * whose sub-folders a trainer does not publish (too many, too deep) is accepted: that trainer
 * checks it when it takes the training. With no trainer running nothing is known: the training is
 * queued, and the trainer that takes it checks the folder then.
 */
export async function assertDatasetFolderAvailable(redis: Redis, prefix: string, folder: string): Promise<void> {
  const trainers = await liveTrainerDatasets(redis, prefix);
  const answers = trainers.map((trainer) => datasetFolderAccess(trainer, folder));
  if (trainers.length === 0 || answers.some((answer) => answer.access !== 'unreadable')) return;
  // The folder closest to the one asked for, in every trainer that has it: most often a typo in the last name.
  const missing = [
    ...new Set(
      answers.flatMap((answer) => {
        if (answer.access !== 'unreadable') return [];
        if (answer.outside) return [`${answer.outside} is a link that leads outside the trainer's TRAINER_DATASET_ROOTS, so nothing is read through it; `];
        return answer.missing
          ? [`${answer.missing.parent} holds no folder ${answer.missing.name} (${answer.missing.siblings.length > 0 ? `it holds ${namesOf(answer.missing.siblings)}` : 'it holds none'}); `]
          : [];
      }),
    ),
  ];
  const roots = [...new Set(trainers.flatMap((trainer) => trainer.roots.map(describeRoot)))];
  const cwds = [...new Set(trainers.map((trainer) => trainer.cwd))];
  throw new ApiError(
    422,
    'dataset_not_available',
    `dataset folder ${folder} is not available to any running trainer: ${missing.join('')}a local dataset must be a folder under the trainer's TRAINER_DATASET_ROOTS, ` +
      `${roots.length > 0 ? roots.join('; ') : 'none set'}; a relative path is read from the trainer's working directory (${cwds.join(', ')})`,
  );
}
