import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { classOfFolder, labelOfFolderAllowingCoarse, type Task } from '../model/tasks.js';
import { dicomListingEntry } from './dicom-listing.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp', '.gif', '.dcm']);

export interface LabeledFile {
  /** Absolute path. */
  path: string;
  /** Path relative to the dataset folder with forward slashes, e.g. `yes/y0.jpg`. */
  relPath: string;
  label: string;
  size: number;
  mtimeMs: number;
  /**
   * When the file's contents or metadata last changed (absent where a listing is made up). Unlike
   * the modification time, no copy or restore can set it back: a file replaced by one of the same
   * size and modification time (cp -p, rsync -a, tar x) still shows a new one.
   */
  ctimeMs?: number;
  /**
   * The frame (0-based) of a multi-frame DICOM file this item is; absent for a file that holds one
   * image. Each frame is an item of its own, named `<file>#frame=<n>` (n from 1, as in DICOM).
   */
  frame?: number;
  /** Whose scan it is (a DICOM Patient ID with its issuer, or a patients file's entry): one patient's images share a split. */
  patient?: string;
  /** The DICOM study it belongs to, when the file names one: one study's images share a split. */
  study?: string;
}

export interface DatasetListing {
  files: LabeledFile[];
  /** Sub-folders that are not a class of the task. */
  ignoredFolders: string[];
  /** Class folders (`yes`) and images (`yes/y0.jpg`) not read because a link leads them out of the folders the data may be read from (see DataConfinement), with the reason. */
  refused?: { relPath: string; reason: string }[];
}

/**
 * The folders a dataset's class folders, images and patients file may lie in once links are
 * resolved (a trainer's TRAINER_DATASET_ROOTS): one that a link leads elsewhere (to /etc, another
 * disk) is not read. Links that stay within them (a dataset assembled from others) are followed.
 */
export interface DataConfinement {
  /** Whether a real path (links resolved) lies within the folders. */
  allows(realPath: string): Promise<boolean>;
  /** The folders, as a refusal names them: `TRAINER_DATASET_ROOTS (/data)`. */
  description: string;
}

/** Why a class folder or file is not read: a link leads it out of the confinement. */
const leadsOutside = (confinement: DataConfinement): string => `a link leads it outside ${confinement.description}; not read`;

/**
 * Where `file` (a folder too) is read from: with a confinement, its real path (links resolved), or
 * null when that lies outside; without one, `file` as given. The real path that was checked is what
 * is read, not `file` again: a link changed after the check (to /etc) is not followed.
 */
async function confinedPath(file: string, confinement: DataConfinement | undefined): Promise<string | null> {
  if (!confinement) return file;
  const real = await realpath(file);
  return (await confinement.allows(real)) ? real : null;
}

/** Refuses a dataset folder or a file it names (the patients file) that a link leads out of the confinement; else where to read it from (see confinedPath). */
export async function assertConfined(file: string, confinement: DataConfinement | undefined, what: string): Promise<string> {
  const source = await confinedPath(file, confinement);
  if (source === null) throw new Error(`${what} ${file}: ${leadsOutside(confinement!)}`);
  return source;
}

const FRAME_SUFFIX = /#frame=(\d+)$/;

/** An item's name: the file's relative path, and for a frame of a multi-frame file `#frame=<n>` (n from 1). */
export function itemPath(fileRelPath: string, frame?: number): string {
  return frame === undefined ? fileRelPath : `${fileRelPath}#frame=${frame + 1}`;
}

/** The file and the frame (0-based) an item's name stands for. */
export function parseItemPath(relPath: string): { file: string; frame?: number } {
  const match = FRAME_SUFFIX.exec(relPath);
  return match ? { file: relPath.slice(0, match.index), frame: Number(match[1]) - 1 } : { file: relPath };
}

/** The part of a listing whose relative paths are in `relPaths`. */
export function subsetListing(listing: DatasetListing, relPaths: ReadonlySet<string>): DatasetListing {
  return { ...listing, files: listing.files.filter((f) => relPaths.has(f.relPath)) };
}

/** Lists a folder with one sub-folder per class (aliases accepted), sorted for reproducibility. */
export function listLabeledImages(dataDir: string, task: Task, options: { coarse?: boolean; confinement?: DataConfinement } = {}): Promise<DatasetListing> {
  const labelOf = options.coarse ? labelOfFolderAllowingCoarse : classOfFolder;
  return listImages(dataDir, (folder) => labelOf(task, folder), `one sub-folder per class of ${task}`, options.confinement);
}

/** Lists every image in every sub-folder, labelled with its folder's name (for comparisons, not training). */
export function listImagesByFolder(dataDir: string): Promise<DatasetListing> {
  return listImages(dataDir, (folder) => folder, 'images in sub-folders');
}

/** Whether a directory entry is a folder, or a link to one (read as the folder). */
const isFolder = async (dir: string, entry: Dirent): Promise<boolean> =>
  entry.isDirectory() || (entry.isSymbolicLink() && (await stat(path.join(dir, entry.name)).catch(() => null))?.isDirectory() === true);

async function listImages(dataDir: string, labelOf: (folder: string) => string | undefined, expected: string, confinement?: DataConfinement): Promise<DatasetListing> {
  // With a confinement, the dataset folder, a class folder or an image that is a link is read at the real path its check found.
  const dir = await assertConfined(dataDir, confinement, 'dataset folder');
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
    throw new Error(`cannot read dataset folder ${dataDir}: ${(error as Error).message}`);
  });
  const files: LabeledFile[] = [];
  const ignoredFolders: string[] = [];
  const refused: { relPath: string; reason: string }[] = [];
  const folders = [];
  for (const entry of entries) if (await isFolder(dir, entry)) folders.push(entry);
  for (const entry of folders.sort((a, b) => a.name.localeCompare(b.name))) {
    const label = labelOf(entry.name);
    if (!label) {
      ignoredFolders.push(entry.name);
      continue;
    }
    // Only a link can lead out: a folder or file that is none lies where its parent does.
    const folder = entry.isSymbolicLink() ? await confinedPath(path.join(dir, entry.name), confinement) : path.join(dir, entry.name);
    if (folder === null) {
      refused.push({ relPath: entry.name, reason: leadsOutside(confinement!) });
      continue;
    }
    const inFolder = (await readdir(folder, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const item of inFolder) {
      const { name } = item;
      const extension = path.extname(name).toLowerCase();
      // Files from a PACS export often have no extension at all; those are listed when they are DICOM.
      if (extension !== '' && !IMAGE_EXTENSIONS.has(extension)) continue;
      const full = item.isSymbolicLink() ? await confinedPath(path.join(folder, name), confinement) : path.join(folder, name);
      if (full === null) {
        refused.push({ relPath: `${entry.name}/${name}`, reason: leadsOutside(confinement!) });
        continue;
      }
      const info = await stat(full);
      if (!info.isFile()) continue;
      const file: LabeledFile = { path: full, relPath: `${entry.name}/${name}`, label, size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs };
      const dicom = extension === '.dcm' || extension === '' ? await dicomListingEntry(full, info.size) : undefined;
      if (!dicom) {
        if (extension !== '') files.push(file);
        continue;
      }
      const owner = { ...(dicom.patient ? { patient: dicom.patient } : {}), ...(dicom.study ? { study: dicom.study } : {}) };
      if (dicom.frames <= 1) files.push({ ...file, ...owner });
      else for (let frame = 0; frame < dicom.frames; frame++) files.push({ ...file, relPath: itemPath(file.relPath, frame), frame, ...owner });
    }
  }
  if (files.length === 0) {
    const why = refused.length > 0 ? ` (${refused.length} not read: ${refused[0]!.reason})` : '';
    throw new Error(`no images found in ${dataDir}: expected ${expected}${why}`);
  }
  return { files, ignoredFolders, ...(refused.length > 0 ? { refused } : {}) };
}
