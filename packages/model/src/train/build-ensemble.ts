import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import type { HistoryPoint } from '../eval/plots.js';
import { parseManifest, readArtifactDir, type ArtifactFiles } from '../model/artifact.js';
import { ARTIFACT_FILES, type EnsembleMember, type ModelManifest } from '../model/manifest.js';
import { renderProbeImage } from '../model/probe-image.js';
import { finishArtifact } from './finish-artifact.js';
import { splitEvaluation, type SplitData } from './split-evaluation.js';
import { newVersion } from './write-artifact.js';

export interface EnsembleOptions extends SplitData {
  /** Artifact folders of the members, each trained on the same split. */
  memberDirs: string[];
  outDir: string;
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
    ['test-time rotations', [first.testTimeRotations, first.testTimeRotationsBelow], [other.testTimeRotations, other.testTimeRotationsBelow]],
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
 * then calibrates and evaluates it on that split's validation and test images (and the separate test
 * folder), as training does for a single model. The locator, if any member has one, comes from the first that does.
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
  // The check on images unlike the training scans reads the first classifier's features: the first member's, whose statistics it keeps.
  if (first.typicality) await copyFile(path.join(options.memberDirs[0] as string, ARTIFACT_FILES.typicality), path.join(outDir, ARTIFACT_FILES.typicality));
  const probe = await renderProbeImage();
  await writeFile(path.join(outDir, ARTIFACT_FILES.probe), probe);

  const trainingSeconds = manifests.reduce((sum, m) => sum + (m.training?.durationSeconds ?? 0), 0) + (locator?.durationSeconds ?? 0);
  const { training: _training, metrics: _metrics, expectedOutput: _expected, locator: _locator, calibration: _calibration, ...shared } = first;
  const manifest: ModelManifest = {
    ...shared,
    version: options.version ?? newVersion(),
    createdAt: new Date().toISOString(),
    ...(locator ? { locator } : {}),
    ensemble: { ...(options.command ? { command: options.command } : {}), members: entries, durationSeconds: trainingSeconds },
  };
  const evaluation = await splitEvaluation(manifest, { ...options, splitFile: path.join(outDir, ARTIFACT_FILES.split) });
  return finishArtifact(outDir, manifest, evaluation, history, options.command);
}
