import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { classOfFolder, labelOfFolderAllowingCoarse, type Task } from '../model/tasks.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp', '.gif', '.dcm']);

export interface LabeledFile {
  /** Absolute path. */
  path: string;
  /** Path relative to the dataset folder with forward slashes, e.g. `yes/y0.jpg`. */
  relPath: string;
  label: string;
  size: number;
  mtimeMs: number;
}

export interface DatasetListing {
  files: LabeledFile[];
  /** Sub-folders that are not a class of the task. */
  ignoredFolders: string[];
}

/** The part of a listing whose relative paths are in `relPaths`. */
export function subsetListing(listing: DatasetListing, relPaths: ReadonlySet<string>): DatasetListing {
  return { ...listing, files: listing.files.filter((f) => relPaths.has(f.relPath)) };
}

/** Lists a folder with one sub-folder per class (aliases accepted), sorted for reproducibility. */
export function listLabeledImages(dataDir: string, task: Task, options: { coarse?: boolean } = {}): Promise<DatasetListing> {
  const labelOf = options.coarse ? labelOfFolderAllowingCoarse : classOfFolder;
  return listImages(dataDir, (folder) => labelOf(task, folder), `one sub-folder per class of ${task}`);
}

/** Lists every image in every sub-folder, labelled with its folder's name (for comparisons, not training). */
export function listImagesByFolder(dataDir: string): Promise<DatasetListing> {
  return listImages(dataDir, (folder) => folder, 'images in sub-folders');
}

async function listImages(dataDir: string, labelOf: (folder: string) => string | undefined, expected: string): Promise<DatasetListing> {
  const entries = await readdir(dataDir, { withFileTypes: true }).catch((error: unknown) => {
    throw new Error(`cannot read dataset folder ${dataDir}: ${(error as Error).message}`);
  });
  const files: LabeledFile[] = [];
  const ignoredFolders: string[] = [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const label = labelOf(entry.name);
    if (!label) {
      ignoredFolders.push(entry.name);
      continue;
    }
    const names = (await readdir(path.join(dataDir, entry.name))).sort();
    for (const name of names) {
      if (!IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase())) continue;
      const full = path.join(dataDir, entry.name, name);
      const info = await stat(full);
      if (!info.isFile()) continue;
      files.push({ path: full, relPath: `${entry.name}/${name}`, label, size: info.size, mtimeMs: info.mtimeMs });
    }
  }
  if (files.length === 0) {
    throw new Error(`no images found in ${dataDir}: expected ${expected}`);
  }
  return { files, ignoredFolders };
}
