import { readdir, stat } from 'node:fs/promises';
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
      const extension = path.extname(name).toLowerCase();
      // Files from a PACS export often have no extension at all; those are listed when they are DICOM.
      if (extension !== '' && !IMAGE_EXTENSIONS.has(extension)) continue;
      const full = path.join(dataDir, entry.name, name);
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
    throw new Error(`no images found in ${dataDir}: expected ${expected}`);
  }
  return { files, ignoredFolders };
}
