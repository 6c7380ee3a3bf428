// A new version of a model for the benchmarks that promote one: the same weights under a new manifest.
import path from 'node:path';
import { readArtifactDirectory } from '@btd/shared';

/** The artifact files of `<modelsDir>/<task>` under a new version, whose load costs what the served one's did. */
export async function republished(modelsDir, task) {
  const files = await readArtifactDirectory(path.join(modelsDir, task));
  const manifest = JSON.parse(Buffer.from(files['manifest.json']).toString('utf8'));
  manifest.version = `${manifest.version}-republished`;
  manifest.createdAt = new Date().toISOString();
  return { ...files, 'manifest.json': new TextEncoder().encode(JSON.stringify(manifest, null, 2)) };
}
