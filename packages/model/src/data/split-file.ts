import { readFile } from 'node:fs/promises';
import type { SplitAssignment } from './split.js';

/** An artifact's `split.json`: every image with its split and group, and the separate test folder's images. */
export interface SplitFile {
  fingerprint: string;
  assignments: SplitAssignment[];
  externalTest?: { files: { relPath: string; label: string; duplicateInTraining: boolean }[] };
}

/** The images (paths) a split puts in one of its sets. */
export function splitNames(split: Pick<SplitFile, 'assignments'>, set: string): Set<string> {
  return new Set(split.assignments.filter((a) => a.split === set).map((a) => a.relPath));
}

/** Reads a `split.json`, refusing a file that holds no assignments. */
export async function readSplitFile(file: string): Promise<SplitFile> {
  const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<SplitFile>;
  if (!Array.isArray(parsed.assignments)) throw new Error(`${file} holds no split assignments`);
  return parsed as SplitFile;
}
