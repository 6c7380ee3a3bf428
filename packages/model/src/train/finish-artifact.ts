import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { DatasetPredictions, EvaluableModel, EvaluationResult } from '../eval/evaluate.js';
import type { HistoryPoint } from '../eval/plots.js';
import { renderReport } from '../eval/report.js';
import { fitTemperature } from '../eval/temperature.js';
import { writeManifest, writeManifestAndMetrics } from '../model/artifact.js';
import { loadModel } from '../model/loaded-model.js';
import { ARTIFACT_FILES, type ModelManifest } from '../model/manifest.js';

/** Where an artifact is calibrated and evaluated. */
export interface ArtifactEvaluation {
  /** The validation images' predictions, as the network gives them; undefined when the split has none. */
  validation(served: EvaluableModel): Promise<DatasetPredictions | undefined>;
  /** Metrics per evaluation set of the model as served. */
  metrics(served: EvaluableModel): Promise<Record<string, EvaluationResult>>;
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

/**
 * Completes an artifact whose weights, probe image and manifest are in `outDir`: fits its
 * temperature on the validation images, evaluates it as it will be served (with that
 * temperature), records what it answers for the probe image, and writes the manifest,
 * metrics.json and the report.
 */
export async function finishArtifact(
  outDir: string,
  manifest: ModelManifest,
  evaluation: ArtifactEvaluation,
  history: HistoryPoint[],
  command?: string,
): Promise<ModelManifest> {
  delete manifest.calibration;
  await writeManifest(outDir, manifest);
  let served = await loadModel(outDir);
  try {
    const validation = await evaluation.validation(served);
    if (validation && validation.actual.length > 0) {
      const fit = fitTemperature(validation.probabilities, validation.actual, manifest.classes.length);
      manifest.calibration = {
        method: 'temperature',
        temperature: round(fit.temperature, 4),
        fittedOn: 'val',
        images: validation.actual.length,
        nllBefore: round(fit.nllBefore, 4),
        nllAfter: round(fit.nllAfter, 4),
        ...(command ? { command } : {}),
      };
      await writeManifest(outDir, manifest);
      served.dispose();
      served = await loadModel(outDir);
    }
    manifest.metrics = await evaluation.metrics(served);
    const probe = await readFile(path.join(outDir, ARTIFACT_FILES.probe));
    manifest.expectedOutput = { image: ARTIFACT_FILES.probe, probabilities: (await served.predict(probe, { heatmap: false, refuseAtypical: false })).probabilities };
  } finally {
    served.dispose();
  }
  await writeManifestAndMetrics(outDir, manifest);
  await renderReport(outDir, manifest, history);
  return manifest;
}
