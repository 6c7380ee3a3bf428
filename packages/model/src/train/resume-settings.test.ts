import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recordedSettings, settingsToResume } from './resume-settings.js';
import { architectureFor, runSettings, type TrainOptions } from './train-options.js';

const dir = await mkdtemp(path.join(tmpdir(), 'btd-resume-settings-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const made: TrainOptions = { task: 'tumor-binary', dataDir: '/data', outDir: '/out', epochs: 3, batchSize: 16, inputSize: 32, filters: [8, 16], workers: 3 };

/** A checkpoint folder whose state records the settings of a run with `options`. */
async function checkpoint(name: string, options: TrainOptions | undefined, finished = false): Promise<string> {
  const at = path.join(dir, name);
  const run = options && runSettings(options);
  const state = { epoch: 2, bestEpoch: 1, finished, ...(options && run ? { settings: recordedSettings(options, run, architectureFor(options, run)) } : {}) };
  await rm(at, { recursive: true, force: true });
  await mkdir(at, { recursive: true });
  await writeFile(path.join(at, 'state.json'), JSON.stringify(state));
  return at;
}

const resume = (at: string, options: TrainOptions) => settingsToResume(at, options, runSettings(options));

describe('settingsToResume', () => {
  it('refuses an unfinished run under other settings, naming each with both values', async () => {
    const at = await checkpoint('unfinished', made);
    await expect(resume(at, { ...made, batchSize: 4, augmentation: { rotateDeg: 20 }, mixup: 0.2 })).rejects.toThrow(
      /other settings: --batch-size 16 \(now 4\), --augmentation rotateDeg=12 \(now rotateDeg=20\), --mixup 0 \(now 0.2\)/,
    );
    await expect(resume(at, { ...made, selectBy: 'last' })).rejects.toThrow(/--select-by accuracy \(now last\)/);
    await expect(resume(at, { ...made, workers: 1 })).rejects.toThrow(/--workers 3 \(now 1\)/);
    // The same settings, spelled with their defaults or not, resume.
    expect((await resume(at, { ...made, seed: 1, mixup: 0, patience: 4 })).batchSize).toBe(16);
  });

  it("takes the checkpoint's number of workers when none is asked for", async () => {
    const at = await checkpoint('workers', made);
    expect((await resume(at, { ...made, workers: undefined })).workers).toBe(3);
  });

  it('lets a finished run pick its epoch anew on other workers, but not train under other settings', async () => {
    const at = await checkpoint('finished', made, true);
    expect(await resume(at, { ...made, workers: 1, selectBy: 'last' })).toMatchObject({ workers: 1 });
    await expect(resume(at, { ...made, epochs: 6 })).rejects.toThrow(/--epochs 3 \(now 6\)/);
    await expect(resume(at, { ...made, filters: [8, 24] })).rejects.toThrow(/--filters 8,16 \(now 8,24\)/);
  });

  it('resumes a checkpoint written before checkpoints recorded their settings, and refuses a folder without one', async () => {
    const at = await checkpoint('older', undefined);
    expect((await resume(at, { ...made, batchSize: 4 })).batchSize).toBe(4);
    await expect(resume(path.join(dir, 'none'), made)).rejects.toThrow(/no checkpoint to resume/);
  });
});
