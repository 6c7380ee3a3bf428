import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headPhantom } from './helpers/head-phantom.js';
import { REPO_ROOT } from './helpers/index.js';

const BTD = path.join(REPO_ROOT, 'packages/model/bin/btd.js');
/** The shipped detector: these tests run `btd predict` as a user would, and train nothing. */
const MODEL = path.join(REPO_ROOT, 'models/tumor-binary');
/** The synthetic probe image the shipped model carries: a head the model analyses. */
const PROBE = path.join(MODEL, 'probe.png');

interface PredictLine {
  file: string;
  label?: string;
  heatmap?: string;
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
});
