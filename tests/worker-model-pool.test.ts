import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ImageDecodeError, initBackend, loadModel, readArtifactDir, type ArtifactFiles, type LoadedModel } from '@btd/model';
import { ModelThreadPool } from '@btd/inference-worker';
import { REPO_ROOT, datasetsDir } from './helpers/index.js';
import { dicomFile } from './helpers/dicom-file.js';

// Held-out Br35H scans: one each model is sure of, and ones that send each model to its rotated copies.
const SCANS = ['no/no1102.jpg', 'no/no1182.jpg', 'yes/y110.jpg', 'yes/y379.jpg'];
const root = datasetsDir();

describe.skipIf(!root)('the model thread pool', () => {
  let pool: ModelThreadPool;
  const files: Record<string, ArtifactFiles> = {};
  const inProcess: Record<string, LoadedModel> = {};
  let scans: Uint8Array[];

  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
    pool = ModelThreadPool.start(2, 'wasm');
    for (const task of ['tumor-binary', 'tumor-type']) {
      files[task] = await readArtifactDir(path.join(REPO_ROOT, 'models', task));
      inProcess[task] = await loadModel(files[task]!);
    }
    scans = await Promise.all(SCANS.map((scan) => readFile(path.join(root as string, 'br35h', scan))));
  });

  afterAll(async () => {
    for (const model of Object.values(inProcess)) model.dispose();
    await pool?.close();
  });

  it("gives the in-process predictions of both shipped models, the locator's box included, each image spread over both threads", async () => {
    const binary = await pool.load(files['tumor-binary']!);
    const type = await pool.load(files['tumor-type']!);
    expect(binary.plan).toMatchObject({ members: 1, locator: 'head' });
    expect(type.plan).toMatchObject({ members: 2, locator: 'none' });
    let rotatedPieces = 0;
    for (const scan of scans) {
      const before = pool.workDone();
      const [b, t] = await Promise.all([binary.predict(Buffer.from(scan)), type.predict(Buffer.from(scan), { heatmap: false })]);
      const work = pool.workDone().map((n, k) => n - (before[k] as number));
      // Both threads took pieces of this image; base pieces are 2 per model, the rest are rotated copies.
      expect(work.every((n) => n > 0)).toBe(true);
      rotatedPieces += work.reduce((a, n) => a + n, 0) - 4;
      const [eb, et] = [await inProcess['tumor-binary']!.predict(scan), await inProcess['tumor-type']!.predict(scan, { heatmap: false })];
      for (const [got, expected] of [[b, eb], [t, et]] as const) {
        expect(got.label).toBe(expected.label);
        for (const [label, p] of Object.entries(expected.probabilities)) expect(got.probabilities[label]).toBeCloseTo(p, 6);
      }
      expect(b.box).toEqual(eb.box);
      expect(b.peak).toEqual(eb.peak);
      expect(t.heatmap).toBeUndefined();
    }
    // Some of these scans took the rotated copies (2 per binary image, 4 per type image).
    expect(rotatedPieces).toBeGreaterThanOrEqual(4);
    binary.dispose();
    type.dispose();
  });

  it('runs a class-activation heatmap whole on one thread, and reports undecodable and unsupported input as such', async () => {
    const type = await pool.load(files['tumor-type']!);
    const before = pool.workDone();
    const withMap = await type.predict(Buffer.from(scans[0]!));
    expect(pool.workDone().map((n, k) => n - (before[k] as number)).sort()).toEqual([0, 1]);
    const expected = await inProcess['tumor-type']!.predict(scans[0]!);
    expect(withMap.box).toEqual(expected.box);
    expect(withMap.heatmap?.width).toBe(expected.heatmap?.width);
    await expect(type.predict(new TextEncoder().encode('not an image'), { heatmap: false })).rejects.toMatchObject({ name: 'ImageDecodeError', unsupported: false });
    const ct = dicomFile({ width: 8, height: 8, pixels: new Uint16Array(64), modality: 'CT' });
    const refusal = await type.predict(ct).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ImageDecodeError);
    expect(refusal).toMatchObject({ unsupported: true, message: 'DICOM modality is CT; btd analyses MR slices' });
    type.dispose();
  });

  it('refuses a disposed model, fails a broken artifact with its reason and keeps serving the others', async () => {
    const binary = await pool.load(files['tumor-binary']!);
    const broken: ArtifactFiles = { ...files['tumor-binary']!, 'manifest.json': new TextEncoder().encode('{"name": 1}') };
    await expect(pool.load(broken)).rejects.toThrow(/manifest/);
    const served = await binary.predict(Buffer.from(scans[1]!));
    expect(served.label).toBe((await inProcess['tumor-binary']!.predict(scans[1]!)).label);
    binary.dispose();
    await expect(binary.predict(Buffer.from(scans[1]!))).rejects.toThrow(/disposed/);
  });

  it('loads a new version one thread at a time while the old one keeps serving on the others', async () => {
    const old = await pool.load(files['tumor-binary']!);
    const expected = await inProcess['tumor-binary']!.predict(scans[3]!);
    const serving = Array.from({ length: 6 }, () => old.predict(Buffer.from(scans[3]!)));
    const loading = pool.load(files['tumor-binary']!);
    const during = await Promise.all(serving);
    const next = await loading;
    old.dispose();
    for (const prediction of [...during, await next.predict(Buffer.from(scans[3]!))]) {
      expect(prediction.probabilities['tumor']).toBeCloseTo(expected.probabilities['tumor'] as number, 6);
    }
    next.dispose();
  });

  it('reports a thread that dies once, fails the requests it cannot serve, and still closes', async () => {
    const broken: Error[] = [];
    const own = ModelThreadPool.start(2, 'wasm', (error) => broken.push(error));
    const model = await own.load(files['tumor-binary']!);
    // As an out-of-memory kill or a native abort would end it.
    await (own as unknown as { threads: { worker: Worker }[] }).threads[0]!.worker.terminate();
    await vi.waitFor(() => expect(broken).toHaveLength(1));
    expect(broken[0]!.message).toMatch(/model thread exited/);
    await expect(model.predict(scans[0]!, { heatmap: false })).rejects.toThrow(/model thread exited/);
    await own.close(200);
    expect(broken).toHaveLength(1);
  });

  it('rejects the requests in flight when closed, and every later one', async () => {
    const own = ModelThreadPool.start(1, 'wasm');
    const binary = await own.load(files['tumor-binary']!);
    const running = expect(binary.predict(Buffer.from(scans[2]!))).rejects.toThrow(/closed/);
    await own.close();
    await running;
    await expect(own.load(files['tumor-binary']!)).rejects.toThrow(/closed/);
  });
});
