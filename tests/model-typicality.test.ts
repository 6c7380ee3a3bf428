import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyArtifact } from '@btd/shared';
import {
  ARTIFACT_FILES,
  basePieces,
  combinePieces,
  ImageDecodeError,
  initBackend,
  loadModel,
  preprocessImage,
  readArtifactDir,
  rotationPieces,
  meanOfMembers,
  type ArtifactFiles,
  type ServingModel,
} from '../packages/model/src/index.js';
import { mriSlices } from './api-fixtures.js';
import { REPO_ROOT } from './helpers/index.js';
import { noiseImage } from './helpers/noise-image.js';

const UNLIKE = /^image does not look like the brain MRI slices (tumor-binary|tumor-type) was trained on \(its features lie at distance [\d.]+ from theirs, above the limit of [\d.]+\), so its answer could not be trusted: send an axial brain MRI slice$/;

/** An artifact's files with one file replaced (or, with undefined, removed). */
function withFile(files: ArtifactFiles, name: string, bytes: Uint8Array | undefined): ArtifactFiles {
  const copy = { ...files };
  if (bytes) copy[name] = bytes;
  else delete copy[name];
  return copy;
}

/**
 * The shipped models refuse images unlike their training scans (see `typicality.ts`): a network
 * classifies noise with confidence, so its features' distance to the training scans decides.
 */
describe.each(['tumor-binary', 'tumor-type'])('the shipped %s model and images unlike its training scans', (task) => {
  let model: ServingModel;
  let files: ArtifactFiles;
  const scans = [...mriSlices('yes', 3), ...mriSlices('no', 3)];

  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
    files = await readArtifactDir(path.join(REPO_ROOT, 'models', task));
    model = await loadModel(files);
  });
  afterAll(() => model.dispose());

  it('analyses brain MRI slices, each within the limit, and refuses noise as unlike them, naming the distance and the limit', async () => {
    const limit = model.manifest.typicality?.limit as number;
    expect(limit).toBeGreaterThan(0);
    for (const scan of scans) {
      const { typicality } = await model.predict(scan.bytes, { heatmap: false });
      expect(typicality?.limit).toBe(limit);
      expect(typicality?.distance, scan.name).toBeLessThan(limit);
    }
    const noise = await noiseImage();
    const refusal = await model.predict(noise).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ImageDecodeError);
    expect((refusal as ImageDecodeError).unsupported).toBe(true);
    expect((refusal as Error).message).toMatch(UNLIKE);
    expect((refusal as Error).message).toContain(task);
    // Asked not to refuse, it answers, and reports the distance beyond the limit.
    const answered = await model.predict(noise, { refuseAtypical: false });
    expect(answered.typicality?.distance).toBeGreaterThan(limit);
  });

  it('measures the same distance when its forward pass runs split into pieces, as the worker threads run it', async () => {
    const { forwardPass } = model;
    for (const bytes of [scans[0]!.bytes, await noiseImage(200, 5)]) {
      const input = await preprocessImage(bytes, model.manifest.preprocessing);
      const whole = forwardPass.run(input.pixels, 1, 0);
      const base = basePieces(forwardPass.plan, true, true).map((piece) => forwardPass.runPiece(input.pixels, 1, piece));
      const rotated = rotationPieces(forwardPass.plan, meanOfMembers(forwardPass.plan, base)).map((piece) => forwardPass.runPiece(input.pixels, 1, piece));
      const split = combinePieces(forwardPass.plan, base, rotated);
      expect(whole.atypicality?.length).toBe(1);
      expect(split.atypicality?.[0]).toBeCloseTo(whole.atypicality?.[0] as number, 3);
    }
  });

  it('passes its probe check with a limit that refuses every image, the synthetic probe image included', async () => {
    const manifest = JSON.parse(new TextDecoder().decode(files[ARTIFACT_FILES.manifest])) as { typicality: { limit: number } };
    manifest.typicality.limit = 1;
    const strict = withFile(files, ARTIFACT_FILES.manifest, new TextEncoder().encode(JSON.stringify(manifest)));
    const verified = await verifyArtifact(strict, { task, version: model.manifest.version, load: loadModel });
    try {
      await expect(verified.predict(files[ARTIFACT_FILES.probe] as Uint8Array)).rejects.toThrow(UNLIKE);
    } finally {
      verified.dispose();
    }
  });

  it('is refused at load, naming the file, when its statistics are missing or do not fit its network, and leaves no tensor behind', async () => {
    const tensors = tf.memory().numTensors;
    await expect(loadModel(withFile(files, ARTIFACT_FILES.typicality, undefined))).rejects.toThrow(/model artifact has no typicality\.json, which its manifest names/);
    const small = new TextEncoder().encode(JSON.stringify({ mean: [0, 0], precision: [1, 0, 0, 1] }));
    await expect(loadModel(withFile(files, ARTIFACT_FILES.typicality, small))).rejects.toThrow(/typicality statistics have 2 channels, the classifier's last block 128/);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
