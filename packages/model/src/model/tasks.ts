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

export function isTask(value: string): value is Task {
  return (TASKS as readonly string[]).includes(value);
}

/** The class a folder holds for a task, or undefined when the folder is not a class of it. */
export function classOfFolder(task: Task, folder: string): string | undefined {
  const name = folder.toLowerCase();
  if (TASK_CLASSES[task].includes(name)) return name;
  return FOLDER_ALIASES[task][name];
}
