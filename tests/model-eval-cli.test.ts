import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, datasetsDir } from './helpers/index.js';
import { noiseImage } from './helpers/noise-image.js';

const BTD = path.join(REPO_ROOT, 'packages/model/bin/btd.js');
/** The shipped detector and the synthetic probe image it carries: these tests train nothing. */
const SHIPPED_MODEL = path.join(REPO_ROOT, 'models/tumor-binary');
const PROBE = path.join(SHIPPED_MODEL, 'probe.png');

/** Runs `btd eval`; its exit code and output, whether it failed or not. */
function btdEval(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)('node', [BTD, 'eval', ...args]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

describe('btd eval with nothing to evaluate', () => {
  let dir: string;
  let model: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'btd-eval-'));
    // A copy, so that a --record that went through would show in its manifest.
    model = path.join(dir, 'model');
    await cp(SHIPPED_MODEL, model, { recursive: true });
  });

  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function manifestMetrics(): Promise<Record<string, unknown>> {
    return (JSON.parse(await readFile(path.join(model, 'manifest.json'), 'utf8')) as { metrics: Record<string, unknown> }).metrics;
  }

  it('exits 1 with the reasons when no image of --data can be analysed, and records nothing', async () => {
    const data = path.join(dir, 'unreadable');
    for (const folder of ['yes', 'no']) {
      await mkdir(path.join(data, folder), { recursive: true });
      await writeFile(path.join(data, folder, 'scan.jpg'), 'this is text, not a scan');
    }
    const before = await manifestMetrics();
    const { code, stdout, stderr } = await btdEval('--model', model, '--data', data, '--json', '--record', 'nothingRead');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/none of the 2 images in .*unreadable could be analysed, so nothing was evaluated \(no\/scan\.jpg: not a decodable image/);
    expect(await manifestMetrics()).toEqual(before);
  });

  it('exits 1 when --split names none of the images of --data', async () => {
    const data = path.join(dir, 'scans');
    for (const folder of ['yes', 'no']) {
      await mkdir(path.join(data, folder), { recursive: true });
      await copyFile(PROBE, path.join(data, folder, 'probe.png'));
    }
    const split = path.join(dir, 'split.json');
    const assignments = ['yes/elsewhere.png', 'no/elsewhere.png'].map((relPath, group) => ({ relPath, label: relPath.startsWith('yes') ? 'tumor' : 'no_tumor', split: 'test', group }));
    await writeFile(split, JSON.stringify({ fingerprint: 'other images', assignments }));
    const { code, stdout, stderr } = await btdEval('--model', model, '--data', data, '--split', split, '--json');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/none of the 2 images asked for \(e\.g\. by a split file\) is in .*scans, so there is nothing to evaluate/);
    // The same folder and split with one of its images named evaluates that image.
    await writeFile(split, JSON.stringify({ fingerprint: 'these images', assignments: [...assignments, { relPath: 'yes/probe.png', label: 'tumor', split: 'test', group: 2 }] }));
    const evaluated = await btdEval('--model', model, '--data', data, '--split', split, '--json');
    expect(evaluated.code).toBe(0);
    expect(JSON.parse(evaluated.stdout)).toMatchObject({ n: 1 });
  });
});

describe('btd eval on tumour scans only', () => {
  let data: string;

  beforeAll(async () => {
    data = await mkdtemp(path.join(tmpdir(), 'btd-eval-tumours-'));
    await mkdir(path.join(data, 'yes'));
    await copyFile(PROBE, path.join(data, 'yes', 'probe.png'));
  });

  afterAll(() => rm(data, { recursive: true, force: true }));

  it('shows the rates no image measured as a dash with the reason, and as null in --json, every key kept', async () => {
    const printed = await btdEval('--model', SHIPPED_MODEL, '--data', data);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/ specificity – /);
    expect(printed.stdout).toContain('not measured (–): specificity and AUC: every image is `tumor`, so none is a negative to measure them on.');
    expect(printed.stdout).not.toMatch(/NaN/);
    const json = JSON.parse((await btdEval('--model', SHIPPED_MODEL, '--data', data, '--json')).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ n: 1, specificity: null, auc: null, perClass: { no_tumor: { recall: null, support: 0 } } });
    for (const key of ['precision', 'recall', 'f1', 'specificity', 'auc']) expect(json).toHaveProperty(key);
  });
});

describe.skipIf(!datasetsDir())('btd eval on a folder with an image unlike any scan', () => {
  let data: string;

  beforeAll(async () => {
    data = await mkdtemp(path.join(tmpdir(), 'btd-eval-unlike-'));
    for (const folder of ['yes', 'no']) {
      await mkdir(path.join(data, folder));
      for (const name of [`${folder === 'yes' ? 'y' : 'no'}1.jpg`, `${folder === 'yes' ? 'y' : 'no'}2.jpg`]) {
        await copyFile(path.join(datasetsDir() as string, 'br35h', folder, name), path.join(data, folder, name));
      }
    }
    await writeFile(path.join(data, 'yes', 'noise.png'), await noiseImage());
  });

  afterAll(() => rm(data, { recursive: true, force: true }));

  it('counts the images the served model would refuse, names them, and still scores every image', async () => {
    const json = JSON.parse((await btdEval('--model', SHIPPED_MODEL, '--data', data, '--json')).stdout) as { n: number; typicality: { refused: number; limit: number; files: string[] } };
    expect(json.n).toBe(5);
    expect(json.typicality).toMatchObject({ refused: 1, files: ['yes/noise.png'] });
    expect(json.typicality.limit).toBeGreaterThan(0);
    const printed = await btdEval('--model', SHIPPED_MODEL, '--data', data);
    expect(printed.stdout).toMatch(/unlike the training scans \(distance above [\d.]+\), so refused when served: 1 \(yes\/noise\.png\); the rates above count them/);
  });
});
