import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The files of a model artifact directory: relative path (with `/` separators) → bytes. */
export type ArtifactFiles = Record<string, Uint8Array>;

/** Per-file digests and the artifact's content hash, stored beside each published version. */
export interface ArtifactDigest {
  algorithm: 'sha256';
  /** sha256 over every file, in sorted name order, each framed by its name and length. */
  contentHash: string;
  files: Record<string, { sha256: string; bytes: number }>;
}

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

/**
 * Computes the content hash of an artifact. Names are sorted so the hash does not depend on the
 * order files were read in, and each file is framed by its name and byte length so that moving
 * bytes from one file to the next changes the hash.
 */
export function digestArtifact(files: ArtifactFiles): ArtifactDigest {
  const names = Object.keys(files).sort();
  const hash = createHash('sha256');
  const digests: ArtifactDigest['files'] = {};
  for (const name of names) {
    const bytes = files[name] as Uint8Array;
    hash.update(`${name}\0${bytes.byteLength}\0`);
    hash.update(bytes);
    digests[name] = { sha256: sha256(bytes), bytes: bytes.byteLength };
  }
  return { algorithm: 'sha256', contentHash: hash.digest('hex'), files: digests };
}

/** Reads every regular file below `dir` (recursively) into memory. */
export async function readArtifactDirectory(dir: string): Promise<ArtifactFiles> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files: ArtifactFiles = {};
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    const name = path.relative(dir, full).split(path.sep).join('/');
    files[name] = new Uint8Array(await readFile(full));
  }
  return files;
}

/** Writes artifact files below `dir`, creating sub-directories as needed. */
export async function writeArtifactDirectory(dir: string, files: ArtifactFiles): Promise<void> {
  for (const [name, bytes] of Object.entries(files)) {
    const target = path.join(dir, ...name.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, bytes);
  }
}

/**
 * Rejects names that could escape the artifact prefix or directory once joined to it: a registry
 * listing comes from storage, which is not trusted to hold only what we wrote.
 */
export function assertSafeArtifactName(name: string): void {
  const parts = name.split('/');
  if (name.length === 0 || name.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`unsafe artifact file name: ${JSON.stringify(name)}`);
  }
}
