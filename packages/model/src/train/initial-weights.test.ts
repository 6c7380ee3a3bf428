import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { buildClassifier, CLASSIFIER_LAYER, DEFAULT_ARCHITECTURE } from '../model/architecture.js';
import { modelFromArtifact, readArtifactDir } from '../model/artifact.js';
import { writeInitialArtifact } from '../model/initial-artifact.js';
import type { ModelManifest } from '../model/manifest.js';
import { TASK_CLASSES } from '../model/tasks.js';
import { initialiseFrom } from './initial-weights.js';

describe('starting a training run from another artifact', () => {
  let scratch: string;
  let source: string;
  let dataDir: string;
  const run = () => ({ dataDir, splitFingerprint: 'f'.repeat(64) });
  const binary = { classes: TASK_CLASSES['tumor-binary'] };
  const target = (filters = [8, 16]) => buildClassifier({ ...DEFAULT_ARCHITECTURE, filters, convsPerBlock: 1, inputSize: 48, numClasses: 2 });

  async function editManifest(change: (m: ModelManifest) => void): Promise<void> {
    const file = path.join(source, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as ModelManifest;
    change(manifest);
    await writeFile(file, JSON.stringify(manifest));
  }

  beforeAll(async () => {
    await initBackend();
    scratch = await mkdtemp(path.join(os.tmpdir(), 'btd-init-'));
    source = path.join(scratch, 'pretrained');
    dataDir = path.join(scratch, 'br35h');
    await writeInitialArtifact({ task: 'tumor-type', outDir: source, version: 'pre' });
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('refuses weights that may have seen copies of the run\'s held-out images', async () => {
    const model = target();
    await expect(initialiseFrom(source, model, run(), binary)).rejects.toThrow(/may have seen copies.*--exclude-near-duplicates-of/);
    model.dispose();
  });

  it('copies every layer but the classifier from a model trained without near-duplicates of the run\'s folder', async () => {
    await editManifest((m) => {
      m.dataset = { dir: path.join(scratch, 'other'), files: 10, perClass: {}, rejected: 0, excludedNearDuplicatesOf: { dir: dataDir, compared: 5, dropped: 2 } };
    });
    const model = target();
    const classifierBefore = model.getLayer(CLASSIFIER_LAYER).getWeights().map((w) => w.arraySync());
    const record = await initialiseFrom(source, model, run(), binary);
    expect(record).toMatchObject({ name: 'tumor-type', task: 'tumor-type', version: 'pre' });
    expect(record.leakFree).toMatch(/without the 2 images whose near-duplicate group reaches/);
    const sourceModel = await modelFromArtifact(await readArtifactDir(source));
    let copied = 0;
    for (const layer of model.layers) {
      if (layer.weights.length === 0 || layer.name === CLASSIFIER_LAYER) continue;
      const expected = sourceModel.getLayer(layer.name).getWeights();
      layer.getWeights().forEach((w, i) => expect(w.arraySync()).toEqual(expected[i]!.arraySync()));
      copied++;
    }
    expect(copied).toBe(4); // two convolutions, two batch normalisations
    expect(model.getLayer(CLASSIFIER_LAYER).getWeights().map((w) => w.arraySync())).toEqual(classifierBefore);
    sourceModel.dispose();
    model.dispose();
  });

  it('refuses such a model when it also learnt from weights or images checked against another folder only', async () => {
    const dataset = { dir: path.join(scratch, 'other'), files: 10, perClass: {}, rejected: 0, excludedNearDuplicatesOf: { dir: dataDir, compared: 5, dropped: 2 } };
    await editManifest((m) => {
      m.dataset = { ...dataset, extraTraining: { dir: path.join(scratch, 'more'), listed: 3, kept: { glioma: 3 }, droppedNearDuplicates: 0 } };
    });
    const model = target();
    await expect(initialiseFrom(source, model, run(), binary)).rejects.toThrow(/may have seen copies/);
    await editManifest((m) => {
      m.dataset = dataset;
      m.training = { initialisedFrom: { dir: 'elsewhere', name: 'tumor-type', task: 'tumor-type', version: 'x', leakFree: 'checked against other' } } as ModelManifest['training'];
    });
    await expect(initialiseFrom(source, model, run(), binary)).rejects.toThrow(/may have seen copies/);
    await editManifest((m) => {
      delete m.training;
    });
    model.dispose();
  });

  it('accepts a model trained on the same split of the same folder', async () => {
    await editManifest((m) => {
      m.dataset = { dir: dataDir, files: 10, perClass: {}, rejected: 0 };
      m.split = { fingerprint: run().splitFingerprint } as ModelManifest['split'];
    });
    const model = target();
    expect((await initialiseFrom(source, model, run(), binary)).leakFree).toMatch(/same split/);
    // A run that reuses the source's saved split, moving 3 training copies of held-out images out, is told so.
    const reusing = { dataDir, splitFingerprint: 'e'.repeat(64), reusedSplit: { fingerprint: run().splitFingerprint, movedOutOfTraining: 3 } };
    expect((await initialiseFrom(source, model, reusing, binary)).leakFree).toMatch(/split this run reuses \(ffffffffffff\); the 3 training images .* were in the source's training/);
    await expect(initialiseFrom(source, model, { ...reusing, reusedSplit: { fingerprint: 'd'.repeat(64), movedOutOfTraining: 0 } }, binary)).rejects.toThrow(/may have seen copies/);
    model.dispose();
  });

  it('copies the classifier too when the source has the run\'s classes, and an ensemble member it is told', async () => {
    // A second model with other weights becomes member 2 of the source.
    const other = path.join(scratch, 'other-member');
    await writeInitialArtifact({ task: 'tumor-type', outDir: other, version: 'other' });
    const topology = JSON.parse(await readFile(path.join(other, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    topology.weightsManifest.forEach((group) => (group.paths = ['member-2.bin']));
    await writeFile(path.join(source, 'member-2.json'), JSON.stringify(topology));
    await copyFile(path.join(other, 'weights.bin'), path.join(source, 'member-2.bin'));
    await editManifest((m) => {
      m.ensemble = { members: [{ topology: 'model.json', version: 'pre', createdAt: m.createdAt }, { topology: 'member-2.json', version: 'other', createdAt: m.createdAt }], durationSeconds: 0 };
    });
    const typeTarget = () => buildClassifier({ ...DEFAULT_ARCHITECTURE, filters: [8, 16], convsPerBlock: 1, inputSize: 48, numClasses: 4 });
    const types = { classes: TASK_CLASSES['tumor-type'] };
    const model = typeTarget();
    await expect(initialiseFrom(source, model, run(), types)).rejects.toThrow(/ensemble of 2: say which member.*--init-member/);
    await expect(initialiseFrom(source, model, run(), { ...types, member: 3 })).rejects.toThrow(/members 1 to 2, not 3/);
    const record = await initialiseFrom(source, model, run(), { ...types, member: 2 });
    expect(record).toMatchObject({ member: 2, classifier: true });
    const expected = await modelFromArtifact(await readArtifactDir(other));
    for (const layer of model.layers) {
      const weights = expected.getLayer(layer.name).getWeights();
      layer.getWeights().forEach((w, i) => expect(w.arraySync()).toEqual(weights[i]!.arraySync()));
    }
    expected.dispose();
    model.dispose();
    await editManifest((m) => {
      delete m.ensemble;
    });
    const single = typeTarget();
    await expect(initialiseFrom(source, single, run(), { ...types, member: 1 })).rejects.toThrow(/not an ensemble/);
    single.dispose();
  });

  it('refuses another architecture with the layer that differs', async () => {
    const model = target([8, 32]);
    await expect(initialiseFrom(source, model, run(), binary)).rejects.toThrow(/layer b1_conv0 .* other shapes/);
    model.dispose();
  });
});
