import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeInitialArtifact } from '@btd/model';

/**
 * Writes untrained (randomly initialised) artifacts of both tasks into a fresh
 * directory laid out like `models/`: `<dir>/tumor-binary/`, `<dir>/tumor-type/`. For tests of
 * plumbing, not accuracy. The caller removes the directory.
 */
export async function writeTestModels(dir?: string, version = 'test-1'): Promise<string> {
  const modelsDir = dir ?? (await mkdtemp(path.join(tmpdir(), 'btd-models-')));
  for (const task of ['tumor-binary', 'tumor-type'] as const) {
    await writeInitialArtifact({ task, outDir: path.join(modelsDir, task), version });
  }
  return modelsDir;
}
