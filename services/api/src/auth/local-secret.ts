import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Reads a secret kept in a local file, creating it (random, readable by the owner only) when
 * missing or too short. Lets a fresh machine run without setup while restarts keep the value.
 */
export async function readOrCreateSecret(file: string, minLength: number): Promise<{ value: string; created: boolean }> {
  const existing = await readFile(file, 'utf8').then((text) => text.trim(), () => '');
  if (existing.length >= minLength) return { value: existing, created: false };
  const value = randomBytes(24).toString('base64url');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${value}\n`, { mode: 0o600 });
  return { value, created: true };
}
