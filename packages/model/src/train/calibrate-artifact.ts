import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import type { HistoryPoint } from '../eval/plots.js';
import { parseManifest, readArtifactDir } from '../model/artifact.js';
import { ARTIFACT_FILES, type ModelManifest } from '../model/manifest.js';
import { renderProbeImage } from '../model/probe-image.js';
import { finishArtifact } from './finish-artifact.js';
import { applyServingViews, type ServingViewOptions } from './serving-views.js';
import { splitEvaluation, type SplitData } from './split-evaluation.js';
import { newVersion } from './write-artifact.js';

export interface CalibrateOptions extends SplitData, ServingViewOptions {
  /** An artifact folder with its split.json. */
  modelDir: string;
  command?: string;
  version?: string;
}

/**
 * Fits the temperature of a trained artifact (a single model or an ensemble) on its split's
 * validation images and re-evaluates it, in place, as a new version, optionally with other
 * test-time rotations (they change the averaged probabilities, so the temperature follows them).
 * Training and `btd ensemble` do the same for the artifacts they write; this serves artifacts
 * written before, or re-fits.
 */
export async function calibrateArtifact(options: CalibrateOptions): Promise<ModelManifest> {
  await initBackend();
  const { modelDir } = options;
  const files = await readArtifactDir(modelDir);
  const manifest = parseManifest(files);
  if (!files[ARTIFACT_FILES.split]) throw new Error(`${modelDir} has no ${ARTIFACT_FILES.split}: its validation images are unknown`);
  if (!files[ARTIFACT_FILES.probe]) await writeFile(path.join(modelDir, ARTIFACT_FILES.probe), await renderProbeImage());
  const historyBytes = files[ARTIFACT_FILES.history];
  const history = historyBytes ? (JSON.parse(new TextDecoder().decode(historyBytes)) as HistoryPoint[]) : [];
  const previous = manifest.version;
  applyServingViews(manifest, options);
  manifest.version = options.version ?? newVersion();
  manifest.createdAt = new Date().toISOString();
  const evaluation = await splitEvaluation(manifest, { ...options, splitFile: path.join(modelDir, ARTIFACT_FILES.split) });
  const command = options.command ? `${options.command} (calibrating version ${previous})` : undefined;
  return finishArtifact(modelDir, manifest, evaluation, history, command);
}
