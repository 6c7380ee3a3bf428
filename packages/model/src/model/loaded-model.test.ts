import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { buildClassifier, DEFAULT_ARCHITECTURE } from './architecture.js';
import { readArtifactDir, saveModelWeights, type ArtifactFiles } from './artifact.js';
import { loadModel } from './loaded-model.js';
import type { ModelManifest } from './manifest.js';

/** The models this repository ships, whose manifests must keep loading. */
const SHIPPED = ['tumor-binary', 'tumor-type'].map((name) => fileURLToPath(new URL(`../../../../models/${name}`, import.meta.url)));

/** The artifact's files with its manifest changed by `change`, in memory. */
function withManifest(files: ArtifactFiles, change: (manifest: Record<string, unknown> & ModelManifest) => void): ArtifactFiles {
  const manifest = JSON.parse(new TextDecoder().decode(files['manifest.json'])) as Record<string, unknown> & ModelManifest;
  change(manifest);
  return { ...files, 'manifest.json': new TextEncoder().encode(JSON.stringify(manifest)) };
}

describe('loading an artifact', () => {
  let binary: ArtifactFiles;

  beforeAll(async () => {
    await initBackend();
    binary = await readArtifactDir(SHIPPED[0]!);
  });

  it.each(SHIPPED)('loads the shipped model %s', async (dir) => {
    const model = await loadModel(dir);
    expect(model.manifest.preprocessing.size).toBe(model.manifest.inputSize);
    model.dispose();
  });

  it.each<[string, (m: Record<string, unknown> & ModelManifest) => void, RegExp]>([
    ['an unknown preprocessing version', (m) => (m.preprocessing.version = 2), /preprocessing version 2 \(this build reproduces version 1\)/],
    ['a preprocessing size other than the input size', (m) => (m.preprocessing.size = 128), /preprocessing\.size 128 does not match inputSize 96/],
    ['no trim threshold', (m) => delete (m.preprocessing as Partial<ModelManifest['preprocessing']>).trimThreshold, /preprocessing\.trimThreshold undefined/],
    ['a share that JSON could not hold (NaN)', (m) => (m.preprocessing.trimMinShare = Number.NaN), /preprocessing\.trimMinShare null/],
    ['a contrast equalisation region of no pixels', (m) => (m.preprocessing.clahe = { tile: 0, maxSlope: 3 }), /preprocessing\.clahe/],
    ['a contrast limit sharp does not take', (m) => (m.preprocessing.clahe = { tile: 16, maxSlope: 2.5 }), /preprocessing\.clahe/],
    ['a preprocessing parameter this build does not know', (m) => Object.assign(m.preprocessing, { gamma: 0.8 }), /preprocessing\.gamma \(unknown to preprocessing version 1\)/],
    ['a heatmap class that is not a class', (m) => (m.heatmapClass = 'tumour'), /heatmapClass tumour is not one of the classes/],
    ['a class named twice', (m) => (m.classes = ['tumor', 'tumor']), /classes \["tumor","tumor"\] \(two or more distinct names\)/],
    ['no name', (m) => delete (m as Partial<ModelManifest>).name, /invalid model manifest: name/],
  ])('refuses a manifest with %s, saying why', async (_, change, reason) => {
    await expect(loadModel(withManifest(binary, change))).rejects.toThrow(reason);
  });

  it('loads a manifest with local contrast equalisation sharp can apply', async () => {
    const model = await loadModel(withManifest(binary, (m) => (m.preprocessing.clahe = { tile: 16, maxSlope: 3 })));
    expect(model.manifest.preprocessing.clahe).toEqual({ tile: 16, maxSlope: 3 });
    model.dispose();
  });

  it('leaves no tensor behind when it refuses an ensemble whose members differ, locator and all', async () => {
    // The shipped detector (with its locator head) and a second member of three blocks: its activation map is twice as wide.
    const odd = buildClassifier({ ...DEFAULT_ARCHITECTURE, filters: [16, 32, 64], inputSize: 96, numClasses: 2 }, 1);
    const dir = await mkdtemp(path.join(tmpdir(), 'btd-odd-member-'));
    await saveModelWeights(odd, dir, { topology: 'member-2.json', weights: 'member-2.bin' });
    odd.dispose();
    const ensemble = withManifest({ ...binary, ...(await readArtifactDir(dir)) }, (m) => {
      const member = (topology: string, version: string) => ({ topology, version, createdAt: '' });
      m.ensemble = { members: [member('model.json', 'a'), member('member-2.json', 'b')], durationSeconds: 0 };
    });
    await rm(dir, { recursive: true, force: true });
    const before = tf.memory().numTensors;
    for (let attempt = 0; attempt < 3; attempt++) {
      await expect(loadModel(ensemble)).rejects.toThrow(/ensemble members must share their input size and activation-map size/);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  /** The artifact's files with the JSON file `name` changed by `change`. */
  function withJson(files: ArtifactFiles, name: string, change: (json: { weightsManifest: { weights: Record<string, unknown>[] }[] } & Record<string, unknown>) => void): ArtifactFiles {
    const json = JSON.parse(new TextDecoder().decode(files[name])) as Parameters<typeof change>[0];
    change(json);
    return { ...files, [name]: new TextEncoder().encode(JSON.stringify(json)) };
  }

  it.each<[string, (files: ArtifactFiles) => ArtifactFiles, RegExp]>([
    ['a weight renamed', (f) => withJson(f, 'model.json', (j) => (j.weightsManifest[0]!.weights[0]!.name = 'nope/kernel')), /model\.json: its weights do not fit its network: .*nope\/kernel/],
    ['a weight of another shape', (f) => withJson(f, 'model.json', (j) => (j.weightsManifest[0]!.weights[0]!.shape = [16, 1, 3, 3])), /model\.json: its weights do not fit its network: Shape mismatch/],
    ['a locator weight of another shape', (f) => withJson(f, 'locator.json', (j) => ((j.weightsManifest[0]!.weights[0]!.shape as number[]).reverse())), /locator\.json: its weights do not fit its network/],
  ])('leaves no tensor behind when it refuses weights that do not fit the network (%s)', async (_, change, reason) => {
    const broken = change(binary);
    const before = tf.memory().numTensors;
    for (let attempt = 0; attempt < 3; attempt++) await expect(loadModel(broken)).rejects.toThrow(reason);
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each<[string, (files: ArtifactFiles) => ArtifactFiles, RegExp]>([
    ['a manifest cut short', (f) => ({ ...f, 'manifest.json': f['manifest.json']!.subarray(0, 300) }), /manifest\.json is not valid JSON/],
    ['a topology cut short', (f) => ({ ...f, 'model.json': f['model.json']!.subarray(0, 300) }), /model\.json is not valid JSON/],
    ['a topology without its weight list', (f) => withJson(f, 'model.json', (j) => delete (j as Partial<typeof j>).weightsManifest), /model\.json: no weightsManifest/],
    ['quantised weights of the same byte count', (f) => withJson(f, 'model.json', (j) => (j.weightsManifest[0]!.weights[0]!.quantization = { dtype: 'uint8', scale: 1, min: 0 })), /weight b0_conv0\/kernel is quantised/],
  ])('refuses an artifact with %s, naming the file', async (_, change, reason) => {
    await expect(loadModel(change(binary))).rejects.toThrow(reason);
  });

  it('refuses a calibration temperature that JSON reads as Infinity (1e400), which turns a probability of 0 into NaN', async () => {
    const calibrated = withManifest(binary, (m) => (m.calibration = { method: 'temperature', temperature: 12345, fittedOn: 'val', images: 1, nllBefore: 1, nllAfter: 1 }));
    const text = new TextDecoder().decode(calibrated['manifest.json']).replace('"temperature":12345', '"temperature":1e400');
    await expect(loadModel({ ...calibrated, 'manifest.json': new TextEncoder().encode(text) })).rejects.toThrow(/calibration temperature/);
  });

  it('refuses to answer with the NaN that broken weights give, instead of a label with null probabilities', async () => {
    const weights = new Float32Array(binary['weights.bin']!.slice().buffer);
    weights.fill(Number.NaN, weights.length - 600);
    const model = await loadModel({ ...binary, 'weights.bin': new Uint8Array(weights.buffer) });
    await expect(model.predict(binary['probe.png']!)).rejects.toThrow(/gave NaN in its probabilities: its weights are broken/);
    model.dispose();
  });
});
