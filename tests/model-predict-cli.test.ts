import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headPhantom } from './helpers/head-phantom.js';
import { REPO_ROOT } from './helpers/index.js';
import { noiseImage } from './helpers/noise-image.js';

const BTD = path.join(REPO_ROOT, 'packages/model/bin/btd.js');
/** The shipped detector: these tests run `btd predict` as a user would, and train nothing. */
const MODEL = path.join(REPO_ROOT, 'models/tumor-binary');
/** The synthetic probe image the shipped model carries: a head the model analyses. */
const PROBE = path.join(MODEL, 'probe.png');

interface PredictLine {
  file: string;
  label?: string;
  heatmap?: string;
  typicality?: { distance: number; limit: number };
  error?: string;
}

/** Runs `btd predict` on the shipped model; its JSON lines and exit code, whether it failed or not. */
async function btdPredict(...args: string[]): Promise<{ code: number; lines: PredictLine[] }> {
  const outcome = await promisify(execFile)('node', [BTD, 'predict', '--model', MODEL, ...args]).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  const lines = outcome.stdout.trim().split('\n').filter(Boolean).map((text) => JSON.parse(text) as PredictLine);
  return { code: outcome.code, lines };
}

describe('btd predict on several files', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'btd-predict-'));
  });

  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reports an image too wide to preprocess, goes on with the next file and exits 1 at the end', async () => {
    const wide = path.join(dir, 'wide.png');
    await writeFile(wide, await sharp(headPhantom(20_000, 100), { raw: { width: 20_000, height: 100, channels: 1 } }).png().toBuffer());
    const { code, lines } = await btdPredict(wide, PROBE);
    expect(code).toBe(1);
    expect(lines).toEqual([
      { file: wide, error: expect.stringContaining('20000×100') },
      expect.objectContaining({ file: PROBE, label: expect.any(String) }),
    ]);
  });

  it('prints each answer with its distance to the training scans, and refuses an image of noise with the reason', async () => {
    const noise = path.join(dir, 'noise.png');
    await writeFile(noise, await noiseImage());
    const { code, lines } = await btdPredict(noise, PROBE);
    expect(code).toBe(1);
    expect(lines[0]).toEqual({ file: noise, error: expect.stringMatching(/^image does not look like the brain MRI slices tumor-binary was trained on \(its features lie at distance [\d.]+ from theirs, above the limit of [\d.]+\)/) });
    const { typicality } = lines[1]!;
    expect(typicality!.distance).toBeGreaterThan(0);
    expect(typicality!.distance).toBeLessThan(typicality!.limit);
  });

  it('gives each image its own overlay when several share a name, and prints where each went', async () => {
    // Three scans called "scan", each its own size, so that an overlay shows which image it was drawn on.
    const inputs = [
      { file: path.join(dir, 'a', 'scan.png'), side: 192, format: 'png' },
      { file: path.join(dir, 'b', 'scan.png'), side: 160, format: 'png' },
      { file: path.join(dir, 'scan.jpg'), side: 224, format: 'jpeg' },
    ] as const;
    for (const { file, side, format } of inputs) {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, await sharp(PROBE).resize(side, side).toFormat(format).toBuffer());
    }
    const { code, lines } = await btdPredict('--heatmap', path.join(dir, 'overlay.png'), ...inputs.map((input) => input.file));
    expect(code).toBe(0);
    expect(lines.map((line) => [line.file, path.basename(line.heatmap ?? '')])).toEqual([
      [inputs[0].file, 'overlay-scan.png'],
      [inputs[1].file, 'overlay-scan-2.png'],
      [inputs[2].file, 'overlay-scan-3.png'],
    ]);
    for (const [i, line] of lines.entries()) {
      expect(await sharp(line.heatmap).metadata()).toMatchObject({ width: inputs[i]!.side, height: inputs[i]!.side });
    }
  });
});
