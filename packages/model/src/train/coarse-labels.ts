import { COARSE_LABELS, type Task } from '../model/tasks.js';

/**
 * The classes each coarse-labelled image may hold, as an n × classes mask of 0 and 1 in a buffer the
 * gradient workers share, or undefined when no image has a coarse label (COARSE_LABELS).
 */
export function coarseLabelMasks(task: Task, files: readonly { label: string }[], classes: readonly string[]): SharedArrayBuffer | undefined {
  if (!files.some((f) => COARSE_LABELS[task][f.label])) return undefined;
  const buffer = new SharedArrayBuffer(files.length * classes.length);
  const mask = new Uint8Array(buffer);
  files.forEach((f, i) => {
    for (const c of COARSE_LABELS[task][f.label] ?? []) mask[i * classes.length + classes.indexOf(c)] = 1;
  });
  return buffer;
}
