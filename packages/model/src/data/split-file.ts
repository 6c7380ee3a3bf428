import { readFile } from 'node:fs/promises';
import type { SplitAssignment } from './split.js';

/** An artifact's `split.json`: every image with its split and group, and the separate test folder's images. */
export interface SplitFile {
  fingerprint: string;
  assignments: SplitAssignment[];
  externalTest?: { files: { relPath: string; label: string; duplicateInTraining: boolean }[] };
}

/** Reads a `split.json`, refusing a file that holds no assignments. */
export async function readSplitFile(file: string): Promise<SplitFile> {
  const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<SplitFile>;
  if (!Array.isArray(parsed.assignments)) throw new Error(`${file} holds no split assignments`);
  return parsed as SplitFile;
}
