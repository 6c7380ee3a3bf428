import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../packages/model/src/model/loaded-model.js';
import { modelFromArtifact, readArtifactDir } from '../packages/model/src/model/artifact.js';
import { loadCheckpoint } from '../packages/model/src/train/checkpoint.js';
import { readWeights } from '../packages/model/src/train/training-loop.js';
import { evaluateModel } from '../packages/model/src/eval/evaluate.js';
import { trainModel } from '../packages/model/src/train/train-model.js';
import { trainLocator } from '../packages/model/src/train/train-locator.js';
import { buildEnsemble } from '../packages/model/src/train/build-ensemble.js';
import { writeInitialArtifact } from '../packages/model/src/model/initial-artifact.js';
import type { ModelManifest } from '../packages/model/src/model/manifest.js';
import { temperProbabilities } from '../packages/model/src/eval/temperature.js';
import { reviewImageName } from '../packages/model/src/eval/review-pack.js';
import { REPO_ROOT, datasetsDir } from './helpers/repo-paths.js';

const run = promisify(execFile);

/** An artifact served without its temperature: the network's own probabilities. */
async function uncalibrated(dir: string): ReturnType<typeof loadModel> {
  const files = await readArtifactDir(dir);
  const { calibration: _calibration, ...manifest } = JSON.parse(new TextDecoder().decode(files['manifest.json'])) as ModelManifest;
  return loadModel({ ...files, 'manifest.json': new TextEncoder().encode(JSON.stringify(manifest)) });
}
const root = datasetsDir();
const work = await mkdtemp(path.join(tmpdir(), 'btd-e2e-'));
afterAll(() => rm(work, { recursive: true, force: true }));

describe.skipIf(!root)('train → save → load → eval → predict', () => {
  const br35h = root ? path.join(root, 'br35h') : '';
  const outDir = path.join(work, 'tiny-binary');

  it('trains a tiny model on two workers and writes a complete, leak-free artifact', async () => {
    const epochs: number[] = [];
    const result = await trainModel({
      task: 'tumor-binary',
      dataDir: br35h,
      outDir,
      epochs: 2,
      inputSize: 32,
      filters: [8, 16],
      convsPerBlock: 1,
      maxImages: 48,
      workers: 2,
      cacheDir: path.join(work, 'cache'),
      checkpointDir: path.join(work, 'ckpt'),
      outlinesFile: path.join(br35h, 'annotations/tumor-outlines.json'),
      onEpoch: (e) => epochs.push(e.epoch),
    });
    expect(epochs).toEqual([1, 2]);
    const files = await readArtifactDir(outDir);
    for (const name of ['model.json', 'weights.bin', 'manifest.json', 'history.json', 'split.json', 'probe.png', 'report.md', 'curves.svg', 'metrics.json']) {
      expect(Object.keys(files)).toContain(name);
    }
    const manifest = result.manifest;
    expect(manifest.split?.straddlingGroups).toBe(0);
    expect(manifest.split?.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.training?.workers).toBe(2);
    expect(manifest.backend).toBe('wasm');
    const test = manifest.metrics?.test as { n: number; accuracy: number };
    expect(test.n).toBe(manifest.split!.counts.test!.tumor! + manifest.split!.counts.test!.no_tumor!);
    expect(test.accuracy).toBeGreaterThanOrEqual(0);
    // The temperature is fitted on the validation images and improves their likelihood.
    const calibration = manifest.calibration!;
    expect(calibration.images).toBe(manifest.split!.counts.val!.tumor! + manifest.split!.counts.val!.no_tumor!);
    expect(calibration.temperature).toBeGreaterThanOrEqual(0.2);
    expect(calibration.temperature).toBeLessThanOrEqual(5);
    expect(calibration.nllAfter).toBeLessThanOrEqual(calibration.nllBefore);
    // Under 1,000 training images (by default), no check on images unlike them: their 99.9th percentile would be their largest.
    expect(Object.keys(files)).not.toContain('typicality.json');
    expect(manifest.typicality).toBeUndefined();
    // The checkpoint of the last epoch resumes to a finished run.
    const resumed: number[] = [];
    await trainModel({
      task: 'tumor-binary', dataDir: br35h, outDir: path.join(work, 'resumed'), epochs: 2, inputSize: 32, filters: [8, 16], convsPerBlock: 1,
      maxImages: 48, workers: 1, cacheDir: path.join(work, 'cache'), resumeFrom: path.join(work, 'ckpt'), onEpoch: (e) => resumed.push(e.epoch),
    });
    expect(resumed).toEqual([]);
    // Resumed with --select-by last, it keeps the weights the last epoch evaluated (their moving average).
    const last = await trainModel({
      task: 'tumor-binary', dataDir: br35h, outDir: path.join(work, 'resumed-last'), epochs: 2, inputSize: 32, filters: [8, 16], convsPerBlock: 1,
      maxImages: 48, workers: 1, cacheDir: path.join(work, 'cache'), resumeFrom: path.join(work, 'ckpt'), selectBy: 'last',
    });
    expect(last.manifest.training).toMatchObject({ bestEpoch: 2, selectBy: 'last' });
    const checkpoint = (await loadCheckpoint(path.join(work, 'ckpt')))!;
    const kept = await modelFromArtifact(await readArtifactDir(path.join(work, 'resumed-last')));
    const keptWeights = readWeights(kept);
    kept.dispose();
    keptWeights.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(checkpoint.average!.values[i]!)));
    // Other training images (here an extra folder) cannot continue that checkpoint.
    await expect(trainModel({
      task: 'tumor-binary', dataDir: br35h, outDir: path.join(work, 'resumed-extra'), epochs: 2, inputSize: 32, filters: [8, 16], convsPerBlock: 1,
      maxImages: 48, workers: 1, cacheDir: path.join(work, 'cache'), resumeFrom: path.join(work, 'ckpt'),
      extraTrainDir: path.join(root as string, 'brain-mri-4class', 'Training'),
    })).rejects.toThrow(/other training images/);
  });

  it('repeats a run from its seed: the same seed writes the same weights, another seed other weights', async () => {
    // As the first test's run (seed 1, two workers, dropout 0.3), without its checkpoint and outlines.
    const tiny = { task: 'tumor-binary' as const, dataDir: br35h, epochs: 2, inputSize: 32, filters: [8, 16], convsPerBlock: 1, maxImages: 48, workers: 2, cacheDir: path.join(work, 'cache') };
    await trainModel({ ...tiny, outDir: path.join(work, 'repeated') });
    await trainModel({ ...tiny, outDir: path.join(work, 'other-seed'), seed: 2, splitSeed: 1 });
    const weights = (dir: string) => readFile(path.join(dir, 'weights.bin'));
    const first = await weights(outDir);
    expect((await weights(path.join(work, 'repeated'))).equals(first)).toBe(true);
    expect((await weights(path.join(work, 'other-seed'))).equals(first)).toBe(false);
  });

  it('resumes an interrupted run, in the same process, to the weights of an uninterrupted one', async () => {
    // Earlier tests built networks in this process, so tfjs has made their variable names unique with suffixes.
    const tiny = { task: 'tumor-binary' as const, dataDir: br35h, epochs: 3, inputSize: 32, filters: [8, 16], convsPerBlock: 1, maxImages: 48, workers: 2, cacheDir: path.join(work, 'cache') };
    const tensorsBefore = tf.memory().numTensors;
    await trainModel({ ...tiny, outDir: path.join(work, 'uninterrupted') });
    const checkpointDir = path.join(work, 'interrupted-ckpt');
    const controller = new AbortController();
    const interrupted = trainModel({ ...tiny, outDir: path.join(work, 'interrupted'), checkpointDir, signal: controller.signal, onEpoch: (e) => e.epoch === 2 && controller.abort() });
    await expect(interrupted).rejects.toThrow(/aborted/);
    // Other settings would not continue the same run: refused, each of them named.
    await expect(trainModel({ ...tiny, batchSize: 8, inputSize: 40, outDir: path.join(work, 'resumed-other'), resumeFrom: checkpointDir }))
      .rejects.toThrow(/other settings: --input-size 32 \(now 40\), --batch-size 32 \(now 8\)/);
    // A checkpoint from before they recorded their settings, of another network: refused by its weights' shapes.
    const older = path.join(work, 'older-ckpt');
    await cp(checkpointDir, older, { recursive: true });
    const { settings: _settings, ...olderState } = JSON.parse(await readFile(path.join(older, 'state.json'), 'utf8')) as { settings: unknown };
    await writeFile(path.join(older, 'state.json'), JSON.stringify(olderState));
    await expect(trainModel({ ...tiny, filters: [8, 24], outDir: path.join(work, 'resumed-older'), resumeFrom: older }))
      .rejects.toThrow(/weights of another network \(weight \d+ is 3×3×8×16 there, 3×3×8×24 here\)/);
    await trainModel({ ...tiny, outDir: path.join(work, 'resumed-run'), checkpointDir, resumeFrom: checkpointDir });
    await expect(trainModel({ ...tiny, outDir: path.join(work, 'resumed-nothing'), resumeFrom: path.join(work, 'no-such-checkpoint') })).rejects.toThrow(/no checkpoint to resume/);
    const weights = (dir: string) => readFile(path.join(work, dir, 'weights.bin'));
    expect((await weights('resumed-run')).equals(await weights('uninterrupted'))).toBe(true);
    // Neither the interrupted run's network nor the checkpoint's optimizer state is left behind.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('resumes a run that stopped early on patience to that same stop, by accuracy or by loss, and to its last epoch', async () => {
    const tiny = { task: 'tumor-binary' as const, dataDir: br35h, epochs: 6, patience: 1, learningRate: 0.02, inputSize: 32, filters: [8, 16], convsPerBlock: 1, maxImages: 48, workers: 1, cacheDir: path.join(work, 'cache') };
    for (const selectBy of ['accuracy', 'loss'] as const) {
      const checkpointDir = path.join(work, `stopped-${selectBy}-ckpt`);
      const stopped = await trainModel({ ...tiny, selectBy, outDir: path.join(work, `stopped-${selectBy}`), checkpointDir });
      expect(stopped.manifest.training!.epochsRun).toBeLessThan(tiny.epochs);
      // As when the trainer dies after training (in its gate or while publishing) and retries the job.
      const resumed: number[] = [];
      const again = await trainModel({ ...tiny, selectBy, outDir: path.join(work, `stopped-${selectBy}-resumed`), checkpointDir, resumeFrom: checkpointDir, onEpoch: (e) => resumed.push(e.epoch) });
      expect(resumed).toEqual([]);
      expect(again.manifest.training).toMatchObject({ epochsRun: stopped.manifest.training!.epochsRun, bestEpoch: stopped.manifest.training!.bestEpoch });
      const weights = (dir: string) => readFile(path.join(work, dir, 'weights.bin'));
      expect((await weights(`stopped-${selectBy}-resumed`)).equals(await weights(`stopped-${selectBy}`))).toBe(true);
      // Resumed with --select-by last, it keeps the epoch it stopped at, without training on.
      const last: number[] = [];
      const kept = await trainModel({ ...tiny, selectBy: 'last', outDir: path.join(work, `stopped-${selectBy}-last`), resumeFrom: checkpointDir, onEpoch: (e) => last.push(e.epoch) });
      expect(last).toEqual([]);
      expect(kept.manifest.training).toMatchObject({ epochsRun: stopped.manifest.training!.epochsRun, bestEpoch: stopped.manifest.training!.epochsRun });
    }
  });

  it('refuses to train without images of every class, naming the class and the files it could not read', async () => {
    const tiny = { task: 'tumor-binary' as const, epochs: 1, inputSize: 32, filters: [8, 16], convsPerBlock: 1, workers: 1, cacheDir: path.join(work, 'cache') };
    const scans = (await readdir(path.join(br35h, 'yes'))).sort().slice(0, 12);
    const folder = async (name: string, no: 'empty' | 'unreadable', yes: 'scans' | 'unreadable' = 'scans') => {
      const dir = path.join(work, name);
      await mkdir(path.join(dir, 'no'), { recursive: true });
      await mkdir(path.join(dir, 'yes'), { recursive: true });
      for (const scan of scans) {
        if (yes === 'scans') await cp(path.join(br35h, 'yes', scan), path.join(dir, 'yes', scan));
        else await writeFile(path.join(dir, 'yes', scan), 'not an image');
        if (no === 'unreadable') await writeFile(path.join(dir, 'no', `n-${scan}`), 'not an image');
      }
      return dir;
    };
    await expect(trainModel({ ...tiny, dataDir: await folder('one-class', 'empty'), outDir: path.join(work, 'one-class-model') }))
      .rejects.toThrow(/no_tumor has none \(no_tumor: its folder is empty or missing\)/);
    await expect(trainModel({ ...tiny, dataDir: await folder('unreadable-class', 'unreadable'), outDir: path.join(work, 'unreadable-class-model') }))
      .rejects.toThrow(new RegExp(`no_tumor has none \\(no_tumor: none of its 12 files could be read: no/n-${scans[0]} \\(not a decodable image.*, and 9 more\\)`));
    await expect(trainModel({ ...tiny, dataDir: await folder('unreadable-all', 'unreadable', 'unreadable'), outDir: path.join(work, 'unreadable-all-model') }))
      .rejects.toThrow(/tumor and no_tumor have none \(tumor: none of its 12 files could be read: .*; no_tumor: none of its 12 files could be read: /);
    expect(existsSync(path.join(work, 'one-class-model', 'model.json'))).toBe(false);
    expect(existsSync(path.join(work, 'unreadable-class-model', 'model.json'))).toBe(false);
  });

  it('trains on the validation images too when told, on the same test images, and fits no temperature', async () => {
    const tiny = { task: 'tumor-binary' as const, dataDir: br35h, epochs: 1, inputSize: 32, filters: [8, 16], convsPerBlock: 1, maxImages: 48, workers: 1, cacheDir: path.join(work, 'cache') };
    await expect(trainModel({ ...tiny, outDir: path.join(work, 'joined-best'), validationJoinsTraining: true })).rejects.toThrow(/--select-by last/);
    const splitFile = path.join(outDir, 'split.json');
    const saved = JSON.parse(await readFile(splitFile, 'utf8')) as { assignments: { split: string }[] };
    const { manifest } = await trainModel({ ...tiny, outDir: path.join(work, 'joined'), splitFile, validationJoinsTraining: true, selectBy: 'last' });
    const held = (name: string) => saved.assignments.filter((a) => a.split === name).length;
    expect(held('val')).toBeGreaterThan(0);
    expect(manifest.split?.validationJoinedTraining).toBe(held('val'));
    expect(manifest.split?.counts.val).toBeUndefined();
    expect(manifest.metrics?.val).toBeUndefined();
    expect((manifest.metrics?.test as { n: number }).n).toBe(held('test'));
    expect(manifest.calibration).toBeUndefined();
    // Its split has no validation images left, so reusing it needs a fixed schedule too.
    const joinedSplit = path.join(work, 'joined', 'split.json');
    await expect(trainModel({ ...tiny, outDir: path.join(work, 'joined-again'), splitFile: joinedSplit })).rejects.toThrow(/no images in validation.*--select-by last/);
  });

  it('trains each epoch on all main images and part of the extra ones, and refuses the extra-data flags without extra data', async () => {
    const tiny = { task: 'tumor-binary' as const, dataDir: br35h, epochs: 2, inputSize: 32, filters: [8, 16], convsPerBlock: 1, maxImages: 48, workers: 1, cacheDir: path.join(work, 'cache') };
    await expect(trainModel({ ...tiny, outDir: path.join(work, 'sampled-none'), extraPerEpoch: 8 })).rejects.toThrow(/--extra-per-epoch needs --extra-train-data/);
    await expect(trainModel({ ...tiny, outDir: path.join(work, 'balanced-none'), balanceExtraTrainData: true })).rejects.toThrow(/--balance-extra-train-data needs --extra-train-data/);
    let stepsPerEpoch = 0;
    const { manifest, prepared } = await trainModel({
      ...tiny, outDir: path.join(work, 'sampled'), extraTrainDir: path.join(root as string, 'brain-mri-4class', 'Training'),
      extraPerEpoch: 8, balanceExtraTrainData: true, batchSize: 8, onStep: (_done, steps) => { stepsPerEpoch = steps; },
    });
    const main = prepared.indices.train.filter((i) => i < prepared.split.assignments.length).length;
    const extra = prepared.indices.train.length - main;
    expect(extra).toBeGreaterThanOrEqual(16);
    expect(manifest.training).toMatchObject({ extraPerEpoch: 8, balanceExtraTrainData: true });
    // Each epoch: the main training images and 8 extra ones, not all the extra images.
    expect(stepsPerEpoch).toBe(Math.ceil((main + 8) / 8));
    expect(stepsPerEpoch).toBeLessThan(Math.ceil((main + extra) / 8));
  });

  it('guides the activation map by the outlines of the training images when told, and refuses without outlines', async () => {
    const tiny = { task: 'tumor-binary' as const, dataDir: br35h, epochs: 1, inputSize: 32, filters: [8, 16], convsPerBlock: 1, maxImages: 96, workers: 1, cacheDir: path.join(work, 'cache') };
    const outlinesFile = path.join(br35h, 'annotations/tumor-outlines.json');
    await expect(trainModel({ ...tiny, outDir: path.join(work, 'guided-none'), outlineGuidance: 0.3 })).rejects.toThrow(/--outlines/);
    await expect(trainModel({ ...tiny, outDir: path.join(work, 'guided-mixed'), outlineGuidance: 0.3, outlinesFile, mixup: 0.2 })).rejects.toThrow(/--mixup/);
    const { manifest, prepared } = await trainModel({ ...tiny, outDir: path.join(work, 'guided'), outlineGuidance: 0.3, outlinesFile });
    const outlines = JSON.parse(await readFile(outlinesFile, 'utf8')) as Record<string, unknown>;
    const outlinedTraining = prepared.indices.train.filter((i) => prepared.dataset.files[i]!.relPath in outlines).length;
    expect(outlinedTraining).toBeGreaterThan(0);
    expect(manifest.training!.outlineGuidance).toEqual({ weight: 0.3, outlinedImages: outlinedTraining });
  });

  it('loads the artifact from a folder or from memory and reproduces its recorded probe output', async () => {
    const fromDir = await loadModel(outDir);
    const fromMemory = await loadModel(await readArtifactDir(outDir));
    const probe = await readFile(path.join(outDir, 'probe.png'));
    const a = await fromDir.predict(probe);
    const b = await fromMemory.predict(probe);
    expect(a.probabilities).toEqual(b.probabilities);
    for (const [c, p] of Object.entries(fromDir.manifest.expectedOutput!.probabilities)) expect(a.probabilities[c]).toBeCloseTo(p, 5);
    expect(a.heatmap!.data.every((v) => v >= 0 && v <= 1)).toBe(true);
    fromDir.dispose();
    fromDir.dispose();
    fromMemory.dispose();
  });

  it('refuses an artifact whose weights are corrupt or whose shape disagrees with its manifest', async () => {
    const files = await readArtifactDir(outDir);
    await expect(loadModel({ ...files, 'weights.bin': files['weights.bin']!.subarray(0, 100) })).rejects.toThrow(/weights are 100 bytes/);
    const manifest = JSON.parse(new TextDecoder().decode(files['manifest.json']));
    const wrong = new TextEncoder().encode(JSON.stringify({ ...manifest, inputSize: 64 }));
    await expect(loadModel({ ...files, 'manifest.json': wrong })).rejects.toThrow(/does not match/);
  });

  it('adds a locator trained on outlines of the train split, which then gives the heatmap', async () => {
    const before = await loadModel(outDir);
    const image = await readFile(path.join(br35h, 'yes/y0.jpg'));
    const cam = await before.predict(image);
    before.dispose();
    const manifest = await trainLocator({ modelDir: outDir, dataDir: br35h, outlinesFile: path.join(br35h, 'annotations/tumor-outlines.json'), epochs: 3, cacheDir: path.join(work, 'cache') });
    expect(manifest.locator).toMatchObject({ kind: 'head', epochs: 3 });
    expect(manifest.locator?.trainedOn).toBeGreaterThan(0);
    expect(Object.keys(await readArtifactDir(outDir))).toEqual(expect.arrayContaining(['locator.json', 'locator.bin']));
    // metrics.json follows the manifest's re-evaluated location metrics.
    expect(JSON.parse(await readFile(path.join(outDir, 'metrics.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(manifest.metrics)));
    const after = await loadModel(outDir);
    const located = await after.predict(image);
    // Classification is the classifier's alone; the map now comes from the locator.
    expect(located.probabilities).toEqual(cam.probabilities);
    expect(Array.from(located.heatmap!.data)).not.toEqual(Array.from(cam.heatmap!.data));
    after.dispose();
  });

  it('fits the check on images unlike the training scans on the training images when told to at this size, and an ensemble keeps its first member\'s', async () => {
    const tiny = { task: 'tumor-binary' as const, dataDir: br35h, epochs: 1, inputSize: 32, filters: [8, 16], convsPerBlock: 1, maxImages: 48, workers: 1, cacheDir: path.join(work, 'cache'), typicalityMinImages: 20, splitSeed: 1 };
    const [first, second] = [path.join(work, 'typical-1'), path.join(work, 'typical-2')];
    const { manifest } = await trainModel({ ...tiny, outDir: first });
    await trainModel({ ...tiny, outDir: second, seed: 2 });
    expect(Object.keys(await readArtifactDir(first))).toContain('typicality.json');
    const count = (split: string) => manifest.split!.counts[split]!.tumor! + manifest.split!.counts[split]!.no_tumor!;
    expect(manifest.typicality).toMatchObject({ fittedOn: { images: count('train'), quantile: 0.999, margin: 1.1, ridge: 0.001 }, heldOut: { set: 'test', images: count('test') } });
    expect(manifest.typicality!.limit).toBeGreaterThan(0);
    // The probe is recorded with the refusal off: a tiny model's limit may leave the synthetic probe out.
    expect(manifest.expectedOutput?.probabilities.tumor).toBeGreaterThan(0);
    const scan = await readFile(path.join(br35h, 'yes/y0.jpg'));
    const single = await loadModel(first);
    const ensembleDir = path.join(work, 'typical-ensemble');
    const ensemble = await buildEnsemble({ memberDirs: [first, second], outDir: ensembleDir, dataDir: br35h, cacheDir: path.join(work, 'cache') });
    const combined = await loadModel(ensembleDir);
    try {
      const alone = await single.predict(scan, { refuseAtypical: false });
      expect(alone.typicality?.limit).toBe(manifest.typicality!.limit);
      // The ensemble measures images through its first member's features, against that member's training scans.
      expect(ensemble.typicality?.limit).toBe(manifest.typicality!.limit);
      expect((await combined.predict(scan, { refuseAtypical: false })).typicality?.distance).toBeCloseTo(alone.typicality!.distance, 4);
    } finally {
      single.dispose();
      combined.dispose();
    }
  });

  it('combines models trained on one split into an ensemble artifact that averages them', async () => {
    const tiny = { task: 'tumor-binary' as const, dataDir: br35h, epochs: 1, inputSize: 32, filters: [8, 16], convsPerBlock: 1, maxImages: 48, workers: 1, cacheDir: path.join(work, 'cache') };
    const second = path.join(work, 'second');
    // The second member trains with mixup and sharpness-aware steps: the blended batches and the
    // second gradient pass at the moved weights go through the gradient workers.
    await trainModel({ ...tiny, outDir: second, seed: 2, splitSeed: 1, mixup: 0.4, sharpness: 0.05 });
    const secondTraining = (JSON.parse(await readFile(path.join(second, 'manifest.json'), 'utf8')) as { training: { mixup?: number; sharpness?: number } }).training;
    expect(secondTraining.mixup).toBe(0.4);
    expect(secondTraining.sharpness).toBe(0.05);
    const firstTraining = (JSON.parse(await readFile(path.join(outDir, 'manifest.json'), 'utf8')) as { training: object }).training;
    expect(firstTraining).not.toHaveProperty('mixup');
    expect(firstTraining).not.toHaveProperty('sharpness');
    const ensembleDir = path.join(work, 'ensemble');
    const manifest = await buildEnsemble({ memberDirs: [outDir, second], outDir: ensembleDir, dataDir: br35h, cacheDir: path.join(work, 'cache') });
    expect(manifest.ensemble?.members.map((m) => m.topology)).toEqual(['model.json', 'member-2.json']);
    expect(Object.keys(await readArtifactDir(ensembleDir))).toEqual(expect.arrayContaining(['member-2.bin', 'locator.json', 'split.json', 'report.md', 'curves.svg']));
    const history = JSON.parse(await readFile(path.join(ensembleDir, 'history.json'), 'utf8')) as { epoch: number; member: string }[];
    expect(new Set(history.map((h) => h.member))).toEqual(new Set(['member 1 (model.json)', 'member 2 (member-2.json)']));
    // The second member trained for one epoch.
    expect(history.filter((h) => h.member.startsWith('member 2')).map((h) => h.epoch)).toEqual([1]);
    const test = manifest.metrics?.test as { n: number };
    expect(test.n).toBe(manifest.split!.counts.test!.tumor! + manifest.split!.counts.test!.no_tumor!);

    // The ensemble has a temperature of its own, not its first member's.
    expect(manifest.calibration?.images).toBe(manifest.split!.counts.val!.tumor! + manifest.split!.counts.val!.no_tumor!);

    const image = await readFile(path.join(br35h, 'yes/y0.jpg'));
    const [a, b, both] = await Promise.all([uncalibrated(outDir), uncalibrated(second), loadModel(ensembleDir)]);
    const [pa, pb, pe] = [await a.predict(image), await b.predict(image), await both.predict(image)];
    // Its prediction is the mean of the members' network outputs, then tempered.
    const mean = new Float32Array(['tumor', 'no_tumor'].map((c) => ((pa.probabilities[c] as number) + (pb.probabilities[c] as number)) / 2));
    const tempered = temperProbabilities(mean, 2, manifest.calibration!.temperature);
    ['tumor', 'no_tumor'].forEach((c, i) => expect(pe.probabilities[c]).toBeCloseTo(tempered[i]!, 5));
    // The locator came with the first member: the same map as that member's.
    expect(Array.from(pe.heatmap!.data)).toEqual(Array.from(pa.heatmap!.data));
    for (const m of [a, b, both]) m.dispose();

    const otherSplit = path.join(work, 'other-split');
    await trainModel({ ...tiny, outDir: otherSplit, seed: 3 });
    await expect(buildEnsemble({ memberDirs: [outDir, otherSplit], outDir: path.join(work, 'refused'), dataDir: br35h })).rejects.toThrow(/differs from the first member in its split/);
  }, 300_000);

  it('calibrates an existing artifact from the command line, as a new version that predicts the same classes', async () => {
    const copy = path.join(work, 'to-calibrate');
    await cp(outDir, copy, { recursive: true });
    const before = JSON.parse(await readFile(path.join(copy, 'manifest.json'), 'utf8')) as ModelManifest;
    const { stdout } = await run('node', [path.join(REPO_ROOT, 'packages/model/bin/btd.js'), 'calibrate', '--model', copy, '--data', br35h, '--cache', path.join(work, 'cache')], { cwd: REPO_ROOT });
    const printed = JSON.parse(stdout) as { version: string; calibration: { temperature: number; command: string } };
    const after = JSON.parse(await readFile(path.join(copy, 'manifest.json'), 'utf8')) as ModelManifest;
    expect(after.version).toBe(printed.version);
    expect(after.version).not.toBe(before.version);
    expect(after.calibration?.command).toContain(`calibrating version ${before.version}`);
    expect(after.calibration?.temperature).toBeCloseTo(before.calibration!.temperature, 3);
    const accuracy = (m: ModelManifest) => (m.metrics?.test as { accuracy: number }).accuracy;
    expect(accuracy(after)).toBe(accuracy(before));
    expect(await readFile(path.join(copy, 'report.md'), 'utf8')).toContain(`T = ${after.calibration!.temperature}`);
    // The recorded probe output is what the served, tempered model gives.
    const served = await loadModel(copy);
    const probe = await served.predict(await readFile(path.join(copy, 'probe.png')), { heatmap: false });
    for (const [c, p] of Object.entries(after.expectedOutput!.probabilities)) expect(probe.probabilities[c]).toBeCloseTo(p, 5);
    served.dispose();
    await expect(run('node', [path.join(REPO_ROOT, 'packages/model/bin/btd.js'), 'calibrate', '--model', path.join(work, 'missing'), '--data', br35h])).rejects.toMatchObject({ code: 1 });
  }, 120_000);

  it('serves an artifact with test-time rotations once calibrated with them, and refuses bad angles', async () => {
    const copy = path.join(work, 'to-rotate');
    await cp(outDir, copy, { recursive: true });
    const btd = (...args: string[]) => run('node', [path.join(REPO_ROOT, 'packages/model/bin/btd.js'), 'calibrate', '--model', copy, '--data', br35h, '--cache', path.join(work, 'cache'), ...args], { cwd: REPO_ROOT });
    await expect(btd('--test-time-rotations', '0,5')).rejects.toMatchObject({ code: 1 });
    await btd('--test-time-rotations', '-5,5');
    const rotated = JSON.parse(await readFile(path.join(copy, 'manifest.json'), 'utf8')) as ModelManifest;
    expect(rotated.testTimeRotations).toEqual([-5, 5]);
    const served = await loadModel(copy);
    const probe = await served.predict(await readFile(path.join(copy, 'probe.png')), { heatmap: false });
    for (const [c, p] of Object.entries(rotated.expectedOutput!.probabilities)) expect(probe.probabilities[c]).toBeCloseTo(p, 5);
    served.dispose();
    // The same artifact (same weights and temperature) without the rotated copies answers differently.
    const files = await readArtifactDir(copy);
    const { testTimeRotations: _rotations, ...unrotatedManifest } = rotated;
    const plain = await loadModel({ ...files, 'manifest.json': new TextEncoder().encode(JSON.stringify(unrotatedManifest)) });
    const unrotated = await plain.predict(await readFile(path.join(copy, 'probe.png')), { heatmap: false });
    plain.dispose();
    expect(Object.keys(probe.probabilities).some((c) => Math.abs((probe.probabilities[c] as number) - (unrotated.probabilities[c] as number)) > 1e-6)).toBe(true);
    await btd('--test-time-rotations-below', '0.9');
    const bounded = JSON.parse(await readFile(path.join(copy, 'manifest.json'), 'utf8')) as ModelManifest;
    expect([bounded.testTimeRotations, bounded.testTimeRotationsBelow]).toEqual([[-5, 5], 0.9]);
    expect(await readFile(path.join(copy, 'report.md'), 'utf8')).toContain('rotated by -5°, 5° (the rotated copies only where the top probability from the first is below 0.9)');
    await btd('--test-time-rotations', 'none');
    const none = JSON.parse(await readFile(path.join(copy, 'manifest.json'), 'utf8')) as ModelManifest;
    expect([none.testTimeRotations, none.testTimeRotationsBelow]).toEqual([undefined, undefined]);
    await expect(btd('--test-time-rotations-below', '0.9')).rejects.toMatchObject({ code: 1 });
  }, 180_000);

  it('evaluates a folder, with location metrics from outlines', async () => {
    const model = await loadModel(outDir);
    const result = await evaluateModel(model, br35h, { maxImages: 20, outlines: JSON.parse(await readFile(path.join(br35h, 'annotations/tumor-outlines.json'), 'utf8')) });
    expect(result.n).toBe(20);
    expect(result.confusion.flat().reduce((a, b) => a + b, 0)).toBe(20);
    expect(result.auc).toBeGreaterThanOrEqual(0);
    expect(result.location?.n).toBeGreaterThanOrEqual(0);
    model.dispose();
  });

  it('does not grow the tensor count over repeated predictions', async () => {
    const model = await loadModel(outDir);
    const image = await readFile(path.join(br35h, 'yes/y0.jpg'));
    await model.predict(image);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 40; i++) await model.predict(image, { heatmap: i % 2 === 0 });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('runs eval and predict from the btd command line', async () => {
    const bin = path.join(REPO_ROOT, 'packages/model/bin/btd.js');
    const review = path.join(work, 'review');
    const evalOut = await run('node', [bin, 'eval', '--model', outDir, '--data', br35h, '--json', '--max-images', '16', '--outlines', path.join(br35h, 'annotations/tumor-outlines.json'), '--review', review]);
    const report = JSON.parse(evalOut.stdout) as Record<string, unknown>;
    for (const key of ['n', 'accuracy', 'precision', 'recall', 'f1', 'specificity', 'auc', 'perClass', 'confusion']) expect(report).toHaveProperty(key);
    expect(report.n).toBe(16);
    // Every wrong image is listed once, and each near-duplicate group counts once.
    const confusion = report.confusion as number[][];
    const wrong = confusion.flatMap((row, a) => row.filter((_, p) => p !== a)).reduce((s, v) => s + v, 0);
    const misclassified = report.misclassified as { relPath: string; actual: string; predicted: string; group: string }[];
    expect(misclassified).toHaveLength(wrong);
    for (const e of misclassified) {
      expect(e.predicted).not.toBe(e.actual);
      expect(existsSync(path.join(br35h, e.relPath))).toBe(true);
    }
    // The review folder shows each of them with its heatmap, listed in index.md.
    const index = await readFile(path.join(review, 'index.md'), 'utf8');
    for (const e of misclassified) {
      expect(index).toContain(`\`${e.relPath}\``);
      expect((await readFile(path.join(review, reviewImageName(e.relPath)))).subarray(1, 4).toString('latin1')).toBe('PNG');
    }
    expect(index.split('\n').filter((l) => l.startsWith('| `'))).toHaveLength(misclassified.length);
    const byGroup = report.byGroup as { groups: number; accuracy: number; groupsWithErrors: number; accuracyInterval: [number, number] };
    expect(byGroup.accuracyInterval[0]).toBeLessThanOrEqual(report.accuracy as number);
    expect(byGroup.accuracyInterval[1]).toBeGreaterThanOrEqual(report.accuracy as number);
    expect(byGroup.groups).toBeGreaterThan(0);
    expect(byGroup.groups).toBeLessThanOrEqual(16);
    expect(byGroup.groupsWithErrors).toBe(new Set(misclassified.map((e) => e.group)).size);
    const heatmap = path.join(work, 'overlay.png');
    const bad = path.join(work, 'bad.jpg');
    await writeFile(bad, 'this is text');
    const predictOut = await run('node', [bin, 'predict', '--model', outDir, '--heatmap', heatmap, path.join(br35h, 'yes/y0.jpg')]);
    const line = JSON.parse(predictOut.stdout.trim()) as { label: string; probabilities: Record<string, number> };
    expect(['tumor', 'no_tumor']).toContain(line.label);
    expect((await readFile(heatmap)).subarray(1, 4).toString('latin1')).toBe('PNG');
    await expect(run('node', [bin, 'predict', '--model', outDir, bad])).rejects.toMatchObject({ code: 1, stdout: expect.stringContaining('not a decodable image') });
    // A multi-frame DICOM file: one line and one overlay per frame.
    const series = fileURLToPath(new URL('./fixtures/dicom/rle-3-frames.dcm', import.meta.url));
    const framesOut = await run('node', [bin, 'predict', '--model', outDir, '--heatmap', heatmap, series]);
    const lines = framesOut.stdout.trim().split('\n').map((text) => JSON.parse(text) as { frame: number; heatmap: string });
    expect(lines.map((frameLine) => frameLine.frame)).toEqual([1, 2, 3]);
    expect(lines.map((frameLine) => path.basename(frameLine.heatmap))).toEqual(['overlay-rle-3-frames-frame1.png', 'overlay-rle-3-frames-frame2.png', 'overlay-rle-3-frames-frame3.png']);
  }, 600_000);
});

describe('untrained artifacts for plumbing tests', () => {
  it('writes a loadable artifact whose probe output is recorded', async () => {
    const dir = path.join(work, 'initial');
    const manifest = await writeInitialArtifact({ task: 'tumor-type', outDir: dir, inputSize: 32 });
    const model = await loadModel(dir);
    expect(model.manifest.classes).toEqual(['glioma', 'meningioma', 'pituitary', 'no_tumor']);
    const out = await model.predict(await readFile(path.join(dir, 'probe.png')), { heatmap: false });
    for (const [c, p] of Object.entries(manifest.expectedOutput!.probabilities)) expect(out.probabilities[c]).toBeCloseTo(p, 5);
    model.dispose();
  });
});
