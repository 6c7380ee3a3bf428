import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointUnusableError } from './checkpoint-unusable.error.js';
import { trainModel } from './train-model.js';
import type { TrainOptions } from './train-options.js';

const dir = await mkdtemp(path.join(tmpdir(), 'btd-checkpoint-unusable-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A run on a dataset folder that does not exist: it fails as soon as it reads its data. */
const run: TrainOptions = { task: 'tumor-binary', dataDir: path.join(dir, 'no-such-dataset'), outDir: path.join(dir, 'out'), epochs: 2, inputSize: 32, backend: 'wasm' };

/** A checkpoint folder holding only `state`. */
async function checkpoint(name: string, state: object): Promise<string> {
  const at = path.join(dir, name);
  await mkdir(at, { recursive: true });
  await writeFile(path.join(at, 'state.json'), JSON.stringify(state));
  return at;
}

describe('trainModel told to resume', () => {
  it('refuses a folder without a checkpoint, or one made with other settings, as unusable, naming the folder', async () => {
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    const missing = trainModel({ ...run, resumeFrom: empty });
    await expect(missing).rejects.toBeInstanceOf(CheckpointUnusableError);
    await expect(missing).rejects.toThrow(/no checkpoint to resume/);
    await expect(missing).rejects.toMatchObject({ checkpointDir: empty });
    const other = await checkpoint('other-settings', { epoch: 1, settings: { inputSize: 64 } });
    await expect(trainModel({ ...run, resumeFrom: other })).rejects.toThrow(CheckpointUnusableError);
  });

  it('fails otherwise, and not as unusable, when what stops it is not the checkpoint', async () => {
    // A checkpoint of an older run (no settings recorded) passes the check made before the data is read.
    const older = await checkpoint('older', { epoch: 1 });
    const failed = trainModel({ ...run, resumeFrom: older });
    await expect(failed).rejects.toThrow(/no-such-dataset/);
    await expect(failed).rejects.not.toBeInstanceOf(CheckpointUnusableError);
  });
});
