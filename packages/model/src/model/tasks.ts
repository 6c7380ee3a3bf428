/** The two tasks the system serves, each with its own model. */
export type Task = 'tumor-binary' | 'tumor-type';

export const TASKS: readonly Task[] = ['tumor-binary', 'tumor-type'];

export const TASK_CLASSES: Readonly<Record<Task, readonly string[]>> = {
  'tumor-binary': ['tumor', 'no_tumor'],
  'tumor-type': ['glioma', 'meningioma', 'pituitary', 'no_tumor'],
};

/** Folder names accepted for each class, beside the class names themselves. */
const FOLDER_ALIASES: Readonly<Record<Task, Readonly<Record<string, string>>>> = {
  'tumor-binary': { yes: 'tumor', no: 'no_tumor', notumor: 'no_tumor', glioma: 'tumor', meningioma: 'tumor', pituitary: 'tumor' },
  'tumor-type': { notumor: 'no_tumor', no: 'no_tumor' },
};

/**
 * Labels coarser than a task's classes, each standing for any one of its classes: a Br35H `yes`
 * scan holds a tumour of some type the folder does not say. Accepted only for extra training data,
 * where the loss rewards the probability of the whole set (see the gradient worker).
 */
export const COARSE_LABELS: Readonly<Record<Task, Readonly<Record<string, readonly string[]>>>> = {
  'tumor-binary': {},
  'tumor-type': { tumor: ['glioma', 'meningioma', 'pituitary'] },
};

const COARSE_FOLDER_ALIASES: Readonly<Record<Task, Readonly<Record<string, string>>>> = {
  'tumor-binary': {},
  'tumor-type': { yes: 'tumor' },
};

export function isTask(value: string): value is Task {
  return (TASKS as readonly string[]).includes(value);
}

/** The class a folder holds for a task, or undefined when the folder is not a class of it. */
export function classOfFolder(task: Task, folder: string): string | undefined {
  const name = folder.toLowerCase();
  if (TASK_CLASSES[task].includes(name)) return name;
  return FOLDER_ALIASES[task][name];
}

/** The class or coarse label a folder holds for a task's extra training data, or undefined. */
export function labelOfFolderAllowingCoarse(task: Task, folder: string): string | undefined {
  const name = folder.toLowerCase();
  if (COARSE_LABELS[task][name]) return name;
  return COARSE_FOLDER_ALIASES[task][name] ?? classOfFolder(task, folder);
}
