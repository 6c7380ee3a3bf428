import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listLabeledImages } from '../packages/model/src/data/dataset-folder.js';
import { evaluateModel } from '../packages/model/src/eval/evaluate.js';
import { loadModel, type ServingModel } from '../packages/model/src/model/loaded-model.js';
import { writeInitialArtifact } from '../packages/model/src/model/initial-artifact.js';
import { datasetsDir, REPO_ROOT, sampleImages } from './helpers/index.js';

const root = datasetsDir();

/** Runs `btd eval --json` and returns what it prints. */
async function btdEval(...args: string[]): Promise<{ n: number; leftOutAsCopies?: number }> {
  const bin = path.join(REPO_ROOT, 'packages/model/bin/btd.js');
  const { stdout } = await promisify(execFile)('node', [bin, 'eval', '--json', ...args]);
  return JSON.parse(stdout) as { n: number; leftOutAsCopies?: number };
}

describe.skipIf(!root)('evaluating a folder without the copies of other images', () => {
  let dir: string;
  let model: ServingModel;
  let evalDir: string;
  let yes: string[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'btd-eval-copies-'));
    await writeInitialArtifact({ task: 'tumor-binary', outDir: path.join(dir, 'model') });
    model = await loadModel(path.join(dir, 'model'));
    evalDir = path.join(dir, 'eval');
    yes = await sampleImages('br35h/yes', 3);
    const no = await sampleImages('br35h/no', 3);
    for (const [folder, files] of [['yes', yes], ['no', no]] as const) {
      await mkdir(path.join(evalDir, folder), { recursive: true });
      for (const file of files) await symlink(file, path.join(evalDir, folder, path.basename(file)));
    }
    // The reference folder holds a mirrored, re-encoded copy of the first tumour image.
    await mkdir(path.join(dir, 'reference', 'yes'), { recursive: true });
    await writeFile(path.join(dir, 'reference', 'yes', 'mirrored.png'), await sharp(yes[0]!).flop().png().toBuffer());
  });

  afterAll(async () => {
    model?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves out the image whose mirrored copy is in the reference folder, and nothing else', async () => {
    const all = await evaluateModel(model, evalDir);
    expect(all.n).toBe(6);
    expect(all.leftOutAsCopies).toBeUndefined();
    const reference = await listLabeledImages(path.join(dir, 'reference'), 'tumor-binary');
    const unseen = await evaluateModel(model, evalDir, { withoutCopiesIn: reference });
    expect(unseen).toMatchObject({ n: 5, leftOutAsCopies: 1 });
    expect(unseen.confusion.flat().reduce((a, b) => a + b, 0)).toBe(5);
  });

  it('evaluates only the images named, and refuses when every one of them is a copy', async () => {
    const first = `yes/${path.basename(yes[0]!)}`;
    const only = new Set([first, `yes/${path.basename(yes[1]!)}`]);
    expect(await evaluateModel(model, evalDir, { only })).toMatchObject({ n: 2 });
    const reference = await listLabeledImages(path.join(dir, 'reference'), 'tumor-binary');
    await expect(evaluateModel(model, evalDir, { only: new Set([first]), withoutCopiesIn: reference })).rejects.toThrow(/nothing left to evaluate/);
  });

  it('btd eval leaves out the copies in every --without-copies-in folder, whatever its sub-folders are called', async () => {
    // A second reference folder holds a copy of a healthy scan under a folder name no task knows.
    const second = path.join(dir, 'reference-2', 'anything');
    await mkdir(second, { recursive: true });
    const no = await sampleImages('br35h/no', 3);
    await writeFile(path.join(second, 'copy.png'), await sharp(no[0]!).png().toBuffer());
    const evaluate = (...extra: string[]) => btdEval('--model', path.join(dir, 'model'), '--data', evalDir, ...extra);
    expect(await evaluate('--without-copies-in', path.join(dir, 'reference'))).toMatchObject({ n: 5, leftOutAsCopies: 1 });
    expect(await evaluate('--without-copies-in', path.join(dir, 'reference'), '--without-copies-in', path.join(dir, 'reference-2'))).toMatchObject({ n: 4, leftOutAsCopies: 2 });
  });

  it("btd eval --without-copies-in-training also leaves out what the model's own split trained on, when that split lists the same images", async () => {
    const names = [...yes.map((f) => `yes/${path.basename(f)}`), ...(await sampleImages('br35h/no', 3)).map((f) => `no/${path.basename(f)}`)];
    const trainedOn = names[1]!;
    const assignments = (trainOnly: string | undefined, all: readonly string[]) =>
      all.map((relPath, group) => ({ relPath, label: relPath.startsWith('yes/') ? 'tumor' : 'no_tumor', split: relPath === trainOnly ? 'train' : 'test', group }));
    // The evaluated split calls every image a test image; the model trained on one of them.
    const evaluated = path.join(dir, 'evaluated-split.json');
    await writeFile(evaluated, JSON.stringify({ fingerprint: 'evaluated', assignments: assignments(undefined, names) }));
    const trained = path.join(dir, 'trained-model');
    await cp(path.join(dir, 'model'), trained, { recursive: true });
    const evaluate = () => btdEval('--model', trained, '--data', evalDir, '--split', evaluated, '--without-copies-in-training');
    await writeFile(path.join(trained, 'split.json'), JSON.stringify({ fingerprint: 'own', assignments: assignments(trainedOn, names) }));
    expect(await evaluate()).toMatchObject({ n: 5, leftOutAsCopies: 1 });
    // A split of other images (another dataset) says nothing about these.
    await writeFile(path.join(trained, 'split.json'), JSON.stringify({ fingerprint: 'other', assignments: assignments('yes/elsewhere.jpg', ['yes/elsewhere.jpg', ...names.slice(1)]) }));
    expect(await evaluate()).toMatchObject({ n: 6, leftOutAsCopies: 0 });
  });

  it('scores a tumour-type model as a detector, any type counting as a tumour', async () => {
    await writeInitialArtifact({ task: 'tumor-type', outDir: path.join(dir, 'type') });
    const type = await loadModel(path.join(dir, 'type'));
    try {
      // Without it only the no/ folder names a tumour-type class.
      expect(await evaluateModel(type, evalDir)).toMatchObject({ n: 3 });
      const detection = await evaluateModel(type, evalDir, { asDetection: true });
      expect(detection).toMatchObject({ n: 6, classes: ['tumor', 'no_tumor'] });
      expect(detection.confusion.flat().reduce((a, b) => a + b, 0)).toBe(6);
      expect(detection.auc).toBeGreaterThanOrEqual(0);
    } finally {
      type.dispose();
    }
  });
});
