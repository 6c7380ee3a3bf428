import type * as tf from '@tensorflow/tfjs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { CLASSIFIER_LAYER } from '../model/architecture.js';
import { modelFromArtifact, parseManifest, readArtifactDir } from '../model/artifact.js';
import { ARTIFACT_FILES, type InitialWeightsRecord, type ModelManifest, type TrainingRecord } from '../model/manifest.js';

/** The run being started: its folder and split, against which a source's origin is checked. */
export interface RunIdentity {
  dataDir: string;
  splitFingerprint: string;
  /** When the run reuses a saved split: that split's fingerprint, and how many training images it moved out. */
  reusedSplit?: { fingerprint?: string; movedOutOfTraining: number };
}

const canonical = (dir: string) => realpath(path.resolve(dir)).catch(() => path.resolve(dir));

/**
 * Why `source`'s weights have seen no copy of the run's validation or test images, or an error
 * saying why that cannot be shown. Accepted: a model trained on a folder from which every
 * near-duplicate of the run's folder was held out (`--exclude-near-duplicates-of`), or one trained
 * on the run's own split, which saw only its training images.
 */
export async function leakFreeReason(source: ModelManifest, run: RunIdentity): Promise<string> {
  const excluded = source.dataset?.excludedNearDuplicatesOf;
  // Whatever else went into the source (extra training folders, the weights it started from) was
  // checked against its own folder at most, not against this run's: only a source without them counts.
  const trainedOnItsFolderAlone = !source.dataset?.extraTraining && !source.training?.initialisedFrom;
  if (excluded && trainedOnItsFolderAlone && (await canonical(excluded.dir)) === (await canonical(run.dataDir))) {
    return `trained on ${source.dataset?.dir ?? 'another folder'} without the ${excluded.dropped} images whose near-duplicate group reaches ${excluded.dir}`;
  }
  const sameFolder = !source.dataset?.extraTraining && source.dataset && (await canonical(source.dataset.dir)) === (await canonical(run.dataDir));
  if (sameFolder && source.split?.fingerprint === run.splitFingerprint) {
    return `trained on the training images of the same split (${run.splitFingerprint.slice(0, 12)})`;
  }
  const reused = run.reusedSplit;
  if (sameFolder && reused?.fingerprint !== undefined && source.split?.fingerprint === reused.fingerprint) {
    // Training flips images at random, so a mirrored copy in training already stood for its held-out twin:
    // the images moved out leave validation exactly as contaminated as it was for the source itself.
    const moved = reused.movedOutOfTraining > 0
      ? `; the ${reused.movedOutOfTraining} training images this run moves to validation as copies of held-out images were in the source's training, as their copies were`
      : '';
    return `trained on the training images of the split this run reuses (${reused.fingerprint.slice(0, 12)})${moved}`;
  }
  throw new Error(
    `${source.name}@${source.version} may have seen copies of this run's validation or test images: ` +
      `train it with --exclude-near-duplicates-of ${run.dataDir} (without extra training data or --init-from), or on the same split`,
  );
}

export interface InitialiseOptions {
  /** The run's classes: the classifier is copied too when the source has the same ones, in the same order. */
  classes: readonly string[];
  /** Which member (from 1) of an ensemble artifact to start from. */
  member?: number;
}

/** The model to start from: the artifact's own (topology file and training), or one ensemble member's. */
function sourceModel(dir: string, manifest: ModelManifest, member: number | undefined): { topology: string; training?: TrainingRecord } {
  const members = manifest.ensemble?.members;
  if (!members) {
    if (member !== undefined) throw new Error(`${dir} is not an ensemble: it has no member ${member}`);
    return { topology: ARTIFACT_FILES.topology, ...(manifest.training ? { training: manifest.training } : {}) };
  }
  if (member === undefined) throw new Error(`${dir} is an ensemble of ${members.length}: say which member to start from (--init-member)`);
  const chosen = members[member - 1];
  if (!Number.isInteger(member) || !chosen) throw new Error(`${dir} has members 1 to ${members.length}, not ${member}`);
  return chosen;
}

/**
 * Copies every layer's weights from the artifact in `dir` (or one of its ensemble members) into
 * `model` (same architecture), after checking that they cannot leak the run's held-out images. The
 * classifier comes along only when the source has the run's classes (fine-tuning); otherwise it
 * keeps its fresh weights. Batch-normalisation statistics come along with the layers that hold them.
 */
export async function initialiseFrom(dir: string, model: tf.LayersModel, run: RunIdentity, options: InitialiseOptions): Promise<InitialWeightsRecord> {
  const files = await readArtifactDir(dir);
  const manifest = parseManifest(files);
  const { topology, training } = sourceModel(dir, manifest, options.member);
  const leakFree = await leakFreeReason(manifest, run);
  const sameClasses = JSON.stringify(manifest.classes) === JSON.stringify(options.classes);
  const source = await modelFromArtifact(files, topology);
  try {
    for (const layer of model.layers) {
      if ((layer.name === CLASSIFIER_LAYER && !sameClasses) || layer.weights.length === 0) continue;
      const from = source.layers.find((l) => l.name === layer.name);
      if (!from) throw new Error(`${dir} has no layer ${layer.name}: its architecture differs from this run's`);
      const weights = from.getWeights();
      const mismatch = layer.weights.find((w, i) => JSON.stringify(w.shape) !== JSON.stringify(weights[i]?.shape));
      if (weights.length !== layer.weights.length || mismatch) {
        throw new Error(`layer ${layer.name} of ${dir} has other shapes than this run's: its architecture or input size differs`);
      }
      layer.setWeights(weights);
    }
  } finally {
    source.dispose();
  }
  return {
    dir: path.relative(process.cwd(), dir) || '.',
    name: manifest.name,
    task: manifest.task,
    version: manifest.version,
    ...(options.member !== undefined ? { member: options.member } : {}),
    classifier: sameClasses,
    ...(manifest.dataset ? { dataset: manifest.dataset.dir } : {}),
    ...(training ? { durationSeconds: training.durationSeconds } : {}),
    leakFree,
  };
}
