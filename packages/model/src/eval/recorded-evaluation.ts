import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeManifest, writeManifestAndMetrics } from '../model/artifact.js';
import { ARTIFACT_FILES, type ModelManifest } from '../model/manifest.js';

/** Metrics that training and calibration write: `btd eval --record` leaves them alone. */
const TRAINING_METRICS = new Set(['train', 'val', 'test', 'externalTest', 'externalTestLeakFree']);

/** Throws unless `name` can hold a recorded evaluation (checked before the evaluation runs). */
export function checkRecordName(name: string): void {
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) throw new Error(`--record needs a name of letters and digits, e.g. testWithoutCopiesInTraining, not "${name}"`);
  if (TRAINING_METRICS.has(name)) throw new Error(`--record ${name}: that name holds the metrics training measured; choose another`);
}

/**
 * Stores an evaluation in the artifact's manifest under `metrics[name]`, with the command that made it,
 * so that a figure measured after training (e.g. on the images without a copy in training) travels
 * with the model (and `metrics.json`, where the artifact has one). The model's weights and version are
 * unchanged; the record names the version it measured.
 */
export async function recordEvaluation(modelDir: string, name: string, evaluation: Record<string, unknown>, command: string): Promise<void> {
  checkRecordName(name);
  const file = path.join(modelDir, ARTIFACT_FILES.manifest);
  const manifest = JSON.parse(await readFile(file, 'utf8')) as ModelManifest;
  const { rejected, ...metrics } = evaluation;
  manifest.metrics = {
    ...manifest.metrics,
    [name]: { ...metrics, ...(Array.isArray(rejected) && rejected.length > 0 ? { rejected } : {}), command, modelVersion: manifest.version, measured: new Date().toISOString() },
  };
  // Keep metrics.json in step where the artifact has one (trained artifacts do).
  if (await exists(path.join(modelDir, ARTIFACT_FILES.metrics))) await writeManifestAndMetrics(modelDir, manifest);
  else await writeManifest(modelDir, manifest);
}

const exists = (file: string) => access(file).then(() => true, () => false);
