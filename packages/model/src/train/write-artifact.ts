import type * as tf from '@tensorflow/tfjs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { patientsRecord, type PreparedTaskData } from '../data/prepare-task-data.js';
import { evaluateOnDataset, predictOnDataset, type EvaluableModel, type EvaluationResult } from '../eval/evaluate.js';
import { readOutlines } from '../eval/outlines.js';
import type { ArchitectureConfig } from '../model/architecture.js';
import { saveModelWeights, writeManifest } from '../model/artifact.js';
import { loadModel } from '../model/loaded-model.js';
import { ARTIFACT_FILES, type ModelManifest, type TrainingRecord } from '../model/manifest.js';
import { renderProbeImage } from '../model/probe-image.js';
import type { Task } from '../model/tasks.js';
import { finishArtifact } from './finish-artifact.js';
import { TYPICALITY_MIN_IMAGES } from './train-options.js';
import { fitTypicalityOn, TYPICALITY_DEFAULTS, writeTypicality } from './typicality-fit.js';
import { applyServingViews, type ServingViewOptions } from './serving-views.js';
import type { EpochRecord } from './training-loop.js';

interface ArtifactInput {
  model: tf.LayersModel;
  options: ServingViewOptions & {
    task: Task;
    dataDir: string;
    outDir: string;
    inputSize: number;
    outlinesFile?: string;
    version?: string;
    testDataDir?: string;
    splitFile?: string;
    typicalityMinImages?: number;
  };
  classes: string[];
  architecture: ArchitectureConfig;
  backend: string;
  prepared: PreparedTaskData;
  history: EpochRecord[];
  training: TrainingRecord;
}

/** A sortable version: UTC time to the second. */
export function newVersion(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

function splitCounts(prepared: PreparedTaskData): Record<string, Record<string, number>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const a of prepared.split.assignments) {
    counts[a.split] ??= {};
    counts[a.split]![a.label] = (counts[a.split]![a.label] ?? 0) + 1;
  }
  return counts;
}

/** Writes weights, manifest, split, history, probe, evaluation and report; calibrates the artifact and evaluates it as it will be served. */
export async function writeTrainedArtifact(input: ArtifactInput): Promise<ModelManifest> {
  const { options, prepared } = input;
  const outDir = options.outDir;
  await saveModelWeights(input.model, outDir);
  const manifest: ModelManifest = {
    name: options.task,
    task: options.task,
    version: options.version ?? newVersion(),
    createdAt: new Date().toISOString(),
    classes: input.classes,
    inputSize: options.inputSize,
    preprocessing: prepared.dataset.params,
    architecture: input.architecture,
    backend: input.backend,
    testTimeFlip: true,
    ...(options.task === 'tumor-binary' ? { heatmapClass: 'tumor' } : {}),
    dataset: datasetRecord(input),
    split: splitRecord(input),
    training: input.training,
  };
  applyServingViews(manifest, options);
  await writeManifest(outDir, manifest);
  await writeFile(path.join(outDir, ARTIFACT_FILES.history), `${JSON.stringify(input.history, null, 2)}\n`);
  await writeFile(path.join(outDir, ARTIFACT_FILES.split), JSON.stringify(splitFile(input)));
  await writeFile(path.join(outDir, ARTIFACT_FILES.probe), await renderProbeImage());
  await fitTrainedTypicality(outDir, manifest, input);
  return finishArtifact(
    outDir,
    manifest,
    {
      validation: (served) => Promise.resolve(prepared.indices.val.length > 0 ? predictOnDataset(served, prepared.dataset, { indices: prepared.indices.val }) : undefined),
      metrics: (served) => evaluateArtifact(served, input),
    },
    input.history,
  );
}

/**
 * Fits the check that refuses images unlike the training scans (see `btd typicality`) on the
 * training images, counting the test images (or, without any, the validation images) it would
 * refuse, and writes it into the artifact. A training on fewer images than
 * `options.typicalityMinImages` gives an artifact without the check.
 */
async function fitTrainedTypicality(outDir: string, manifest: ModelManifest, { options, prepared }: ArtifactInput): Promise<void> {
  if (prepared.indices.train.length < (options.typicalityMinImages ?? TYPICALITY_MIN_IMAGES)) return;
  const model = await loadModel(outDir);
  try {
    const { forwardPass } = model;
    const set = prepared.indices.test.length > 0 ? 'test' : 'val';
    const held = prepared.indices[set];
    const { pixels } = prepared.dataset;
    const fitted = fitTypicalityOn(forwardPass, { pixels, indices: prepared.indices.train }, held.length > 0 ? { set, pixels, indices: held } : undefined, TYPICALITY_DEFAULTS);
    await writeTypicality(outDir, manifest, fitted, relative(options.dataDir) || '.');
  } finally {
    model.dispose();
  }
  await writeManifest(outDir, manifest);
}

/** Paths in the manifest are relative to where the command ran, as it was given them. */
const relative = (dir: string) => path.relative(process.cwd(), dir);

/** The manifest's `dataset`: the folder, its images per class, and the extra or excluded images. */
function datasetRecord({ options, prepared }: ArtifactInput): ModelManifest['dataset'] {
  const perClass: Record<string, number> = {};
  for (const a of prepared.split.assignments) perClass[a.label] = (perClass[a.label] ?? 0) + 1;
  const { extra, excluded } = prepared;
  return {
    dir: relative(options.dataDir) || '.',
    files: prepared.split.assignments.length,
    perClass,
    rejected: prepared.dataset.rejected.length,
    ...(extra
      ? {
          extraTraining: {
            dir: relative(extra.dir),
            listed: extra.listed,
            kept: extra.kept,
            droppedNearDuplicates: extra.droppedNearDuplicates,
            ...(extra.droppedSamePatient ? { droppedSamePatient: extra.droppedSamePatient } : {}),
            ...(extra.droppedExcluded !== undefined ? { droppedExcluded: extra.droppedExcluded } : {}),
          },
        }
      : {}),
    ...(excluded ? { excludedNearDuplicatesOf: { dir: relative(excluded.dir), compared: excluded.compared, dropped: excluded.dropped.length } } : {}),
  };
}

/** The manifest's `split`: how it was drawn or reused, its counts and fingerprint, and that no group straddles. */
function splitRecord({ options, prepared }: ArtifactInput): NonNullable<ModelManifest['split']> {
  const patients = patientsRecord(prepared);
  return {
    seed: prepared.split.seed,
    fractions: { ...prepared.split.fractions },
    fingerprint: prepared.split.fingerprint,
    file: ARTIFACT_FILES.split,
    duplicateThreshold: prepared.duplicateThreshold,
    duplicateGroups: prepared.duplicateGroups,
    counts: splitCounts(prepared),
    straddlingGroups: prepared.straddling,
    ...(patients ? { patients } : {}),
    ...(options.splitFile && prepared.reusedSplit
      ? { reusedFrom: { file: relative(options.splitFile), fingerprint: prepared.reusedSplit.fingerprint, movedOutOfTraining: prepared.reusedSplit.movedOutOfTraining } }
      : {}),
    ...(prepared.validationJoinedTraining !== undefined ? { validationJoinedTraining: prepared.validationJoinedTraining } : {}),
  };
}

/** The artifact's `split.json`: every image's split and group, and the extra, excluded and external test images. */
function splitFile({ options, prepared }: ArtifactInput): object {
  const { extra, excluded, external } = prepared;
  return {
    fingerprint: prepared.split.fingerprint,
    assignments: prepared.split.assignments,
    ...(extra ? { extraTraining: { dir: relative(extra.dir), files: extra.files } } : {}),
    ...(excluded ? { excludedNearDuplicatesOf: { dir: relative(excluded.dir), dropped: excluded.dropped } } : {}),
    ...(external
      ? {
          externalTest: {
            dir: options.testDataDir,
            files: external.dataset.files.map((f, i) => ({ relPath: f.relPath, label: f.label, duplicateInTraining: external.hasDuplicateInTraining[i] })),
          },
        }
      : {}),
  };
}

async function evaluateArtifact(served: EvaluableModel, input: ArtifactInput): Promise<Record<string, EvaluationResult>> {
  const { prepared, options } = input;
  const outlines = options.outlinesFile ? await readOutlines(options.outlinesFile) : undefined;
  const metrics: Record<string, EvaluationResult> = {};
  if (prepared.indices.test.length > 0) {
    metrics.test = evaluateOnDataset(served, prepared.dataset, { indices: prepared.indices.test, outlines });
  }
  if (prepared.indices.val.length > 0) {
    metrics.val = evaluateOnDataset(served, prepared.dataset, { indices: prepared.indices.val });
  }
  if (prepared.external) {
    const ext = prepared.external;
    metrics.externalTest = evaluateOnDataset(served, ext.dataset);
    const leakFree = ext.hasDuplicateInTraining.flatMap((dup, i) => (dup ? [] : [i]));
    if (leakFree.length > 0) metrics.externalTestLeakFree = evaluateOnDataset(served, ext.dataset, { indices: leakFree });
  }
  return metrics;
}
