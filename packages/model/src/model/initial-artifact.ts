import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { defaultPreprocessParams } from '../data/preprocess.js';
import { buildClassifier, DEFAULT_ARCHITECTURE } from './architecture.js';
import { saveModelWeights, writeManifest } from './artifact.js';
import { loadModel } from './loaded-model.js';
import { ARTIFACT_FILES, type ModelManifest } from './manifest.js';
import { renderProbeImage } from './probe-image.js';
import { TASK_CLASSES, type Task } from './tasks.js';

/**
 * Writes a real but untrained (randomly initialised) artifact: for tests of the serving path,
 * where what matters is that a model loads, predicts and is swapped, not what it predicts.
 */
export async function writeInitialArtifact(opts: { task: Task; outDir: string; inputSize?: number; version?: string; filters?: number[] }): Promise<ModelManifest> {
  const backend = await initBackend();
  const inputSize = opts.inputSize ?? 48;
  const classes = [...TASK_CLASSES[opts.task]];
  const architecture = { ...DEFAULT_ARCHITECTURE, filters: opts.filters ?? [8, 16], convsPerBlock: 1, inputSize, numClasses: classes.length };
  const model = buildClassifier(architecture);
  await saveModelWeights(model, opts.outDir);
  model.dispose();
  const manifest: ModelManifest = {
    name: opts.task,
    task: opts.task,
    version: opts.version ?? 'untrained',
    createdAt: new Date().toISOString(),
    classes,
    inputSize,
    preprocessing: defaultPreprocessParams(inputSize),
    architecture,
    backend: backend.name,
    testTimeFlip: true,
    ...(opts.task === 'tumor-binary' ? { heatmapClass: 'tumor' } : {}),
  };
  await writeManifest(opts.outDir, manifest);
  const probe = await renderProbeImage();
  await writeFile(path.join(opts.outDir, ARTIFACT_FILES.probe), probe);
  const loaded = await loadModel(opts.outDir);
  try {
    const out = await loaded.predict(probe, { heatmap: false });
    manifest.expectedOutput = { image: ARTIFACT_FILES.probe, probabilities: out.probabilities };
  } finally {
    loaded.dispose();
  }
  await writeManifest(opts.outDir, manifest);
  return manifest;
}
