import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the repository. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The read-only datasets: `../shared/datasets` beside the clone (as on CI), else
 * `BTD_DATASETS_DIR`. Undefined when neither exists, so tests can skip.
 */
export function datasetsDir(): string | undefined {
  const candidates = [path.resolve(REPO_ROOT, '../shared/datasets'), process.env.BTD_DATASETS_DIR];
  return candidates.find((dir): dir is string => dir !== undefined && existsSync(dir));
}

/** The first `count` images (sorted by name) of a dataset folder, e.g. `br35h/yes`. */
export async function sampleImages(folder: string, count: number): Promise<string[]> {
  const root = datasetsDir();
  if (!root) throw new Error('datasets not found: set BTD_DATASETS_DIR');
  const dir = path.join(root, folder);
  const names = (await readdir(dir)).filter((name) => /\.(jpe?g|png)$/i.test(name)).sort();
  return names.slice(0, count).map((name) => path.join(dir, name));
}
