import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { listLabeledImages, subsetListing } from '../data/dataset-folder.js';
import { loadPreprocessedDataset } from '../data/preprocessed-dataset.js';
import { readSplitFile } from '../data/split-file.js';
import { evaluateOnDataset, type EvaluationResult } from '../eval/evaluate.js';
import { readOutlines } from '../eval/outlines.js';
import type { HistoryPoint } from '../eval/plots.js';
import { renderReport } from '../eval/report.js';
import { parseManifest, readArtifactDir, writeManifest, type ArtifactFiles } from '../model/artifact.js';
import { loadModel } from '../model/loaded-model.js';
import { ARTIFACT_FILES, type EnsembleMember, type ModelManifest } from '../model/manifest.js';
import { renderProbeImage } from '../model/probe-image.js';
import { newVersion } from './write-artifact.js';

export interface EnsembleOptions {
  /** Artifact folders of the members, each trained on the same split. */
  memberDirs: string[];
  outDir: string;
  /** The dataset the members were trained on (their split.json names the images). */
  dataDir: string;
  /** The separate test folder the members were tested on, if any. */
  testDataDir?: string;
  outlinesFile?: string;
  cacheDir?: string;
  command?: string;
  version?: string;
}

interface WeightsGroup {
  paths: string[];
  weights: unknown[];
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** What every member must share with the first, so that averaging them is meaningful and the split stays unseen. */
function checkCompatible(first: ModelManifest, other: ModelManifest, dir: string): void {
  if (other.ensemble) throw new Error(`${dir} is an ensemble already: list its members instead`);
  const same: [string, unknown, unknown][] = [
    ['task', first.task, other.task],
    ['classes', first.classes, other.classes],
    ['input size', first.inputSize, other.inputSize],
    ['preprocessing', first.preprocessing, other.preprocessing],
    ['test-time flip', first.testTimeFlip, other.testTimeFlip],
    ['split', first.split?.fingerprint, other.split?.fingerprint],
  ];
  for (const [what, a, b] of same) {
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${dir} differs from the first member in its ${what}`);
  }
  if (!other.split) throw new Error(`${dir} records no split: its test images cannot be known to be unseen`);
}

/** A member's per-epoch history (empty if its artifact has none), labelled with the member. */
function memberHistory(files: ArtifactFiles, member: string): HistoryPoint[] {
  const bytes = files[ARTIFACT_FILES.history];
  if (!bytes) return [];
  return (JSON.parse(decode(bytes)) as HistoryPoint[]).map((point) => ({ ...point, member }));
}

/** Writes a member's classifier under new file names: its topology points at its one weights file. */
async function writeMember(files: ArtifactFiles, outDir: string, topology: string, weightsName: string): Promise<void> {
  const modelJson = JSON.parse(decode(files[ARTIFACT_FILES.topology] as Uint8Array)) as { weightsManifest: WeightsGroup[] };
  const parts = modelJson.weightsManifest.flatMap((group) => group.paths).map((name) => {
    const bytes = files[name];
    if (!bytes) throw new Error(`member artifact has no ${name}`);
    return bytes;
  });
  await writeFile(path.join(outDir, weightsName), Buffer.concat(parts));
  modelJson.weightsManifest = [{ paths: [weightsName], weights: modelJson.weightsManifest.flatMap((group) => group.weights) }];
  await writeFile(path.join(outDir, topology), JSON.stringify(modelJson));
}

/**
 * Combines models trained on one split into one artifact whose prediction is the mean of theirs,
 * then evaluates it on that split's validation and test images (and the separate test folder), as
 * training does for a single model. The locator, if any member has one, comes from the first that does.
 * The artifact's history.json holds every member's epochs, each marked with its member.
 */
export async function buildEnsemble(options: EnsembleOptions): Promise<ModelManifest> {
  if (options.memberDirs.length < 2) throw new Error('an ensemble needs at least two members');
  await initBackend();
  const members = await Promise.all(options.memberDirs.map(async (dir) => ({ dir, files: await readArtifactDir(dir) })));
  const manifests = members.map((member) => parseManifest(member.files));
  const first = manifests[0] as ModelManifest;
  manifests.forEach((manifest, i) => checkCompatible(first, manifest, options.memberDirs[i] as string));

  const { outDir } = options;
  await mkdir(outDir, { recursive: true });
  const entries: EnsembleMember[] = [];
  const history: HistoryPoint[] = [];
  for (const [k, member] of members.entries()) {
    const topology = k === 0 ? ARTIFACT_FILES.topology : `member-${k + 1}.json`;
    await writeMember(member.files, outDir, topology, k === 0 ? ARTIFACT_FILES.weights : `member-${k + 1}.bin`);
    const manifest = manifests[k] as ModelManifest;
    entries.push({
      topology,
      version: manifest.version,
      createdAt: manifest.createdAt,
      ...(manifest.training ? { training: manifest.training } : {}),
      ...(manifest.metrics ? { metrics: manifest.metrics } : {}),
    });
    history.push(...memberHistory(member.files, `member ${k + 1} (${topology})`));
  }
  await writeFile(path.join(outDir, ARTIFACT_FILES.history), `${JSON.stringify(history, null, 2)}\n`);
  const withLocator = members.findIndex((member) => member.files[ARTIFACT_FILES.locatorTopology]);
  const locator = withLocator >= 0 ? manifests[withLocator]?.locator : undefined;
  if (withLocator >= 0) {
    for (const name of [ARTIFACT_FILES.locatorTopology, ARTIFACT_FILES.locatorWeights]) {
      await copyFile(path.join(options.memberDirs[withLocator] as string, name), path.join(outDir, name));
    }
  }
  await copyFile(path.join(options.memberDirs[0] as string, ARTIFACT_FILES.split), path.join(outDir, ARTIFACT_FILES.split));
  const probe = await renderProbeImage();
  await writeFile(path.join(outDir, ARTIFACT_FILES.probe), probe);

  const trainingSeconds = manifests.reduce((sum, m) => sum + (m.training?.durationSeconds ?? 0), 0) + (locator?.durationSeconds ?? 0);
  const { training: _training, metrics: _metrics, expectedOutput: _expected, locator: _locator, ...shared } = first;
  const manifest: ModelManifest = {
    ...shared,
    version: options.version ?? newVersion(),
    createdAt: new Date().toISOString(),
    ...(locator ? { locator } : {}),
    ensemble: { ...(options.command ? { command: options.command } : {}), members: entries, durationSeconds: trainingSeconds },
  };
  await writeManifest(outDir, manifest);

  const served = await loadModel(outDir);
  try {
    manifest.metrics = await evaluateOnSplit(served, manifest, options);
    manifest.expectedOutput = { image: ARTIFACT_FILES.probe, probabilities: (await served.predict(probe, { heatmap: false })).probabilities };
  } finally {
    served.dispose();
  }
  await writeManifest(outDir, manifest);
  await writeFile(path.join(outDir, 'metrics.json'), `${JSON.stringify(manifest.metrics, null, 2)}\n`);
  await renderReport(outDir, manifest, history);
  return manifest;
}

async function evaluateOnSplit(
  served: Awaited<ReturnType<typeof loadModel>>,
  manifest: ModelManifest,
  options: EnsembleOptions,
): Promise<Record<string, EvaluationResult>> {
  const split = await readSplitFile(path.join(options.outDir, ARTIFACT_FILES.split));
  const outlines = options.outlinesFile ? await readOutlines(options.outlinesFile) : undefined;
  const listing = await listLabeledImages(options.dataDir, manifest.task);
  const load = (names: Set<string>, from = listing) => loadPreprocessedDataset(subsetListing(from, names), manifest.preprocessing, { cacheDir: options.cacheDir });
  const inSplit = (name: string) => new Set(split.assignments.filter((a) => a.split === name).map((a) => a.relPath));
  const metrics: Record<string, EvaluationResult> = {};
  const test = inSplit('test');
  if (test.size > 0) metrics.test = evaluateOnDataset(served, await load(test), { outlines });
  const val = inSplit('val');
  if (val.size > 0) metrics.val = evaluateOnDataset(served, await load(val));
  if (split.externalTest && options.testDataDir) {
    const external = await loadPreprocessedDataset(await listLabeledImages(options.testDataDir, manifest.task), manifest.preprocessing, { cacheDir: options.cacheDir });
    metrics.externalTest = evaluateOnDataset(served, external);
    const leaky = new Set(split.externalTest.files.filter((f) => f.duplicateInTraining).map((f) => f.relPath));
    const leakFree = external.files.flatMap((f, i) => (leaky.has(f.relPath) ? [] : [i]));
    if (leakFree.length > 0) metrics.externalTestLeakFree = evaluateOnDataset(served, external, { indices: leakFree });
  }
  return metrics;
}
