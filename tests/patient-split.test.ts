import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listLabeledImages } from '../packages/model/src/data/dataset-folder.js';
import { groupNearDuplicates, signatures } from '../packages/model/src/data/near-duplicates.js';
import { patientsAcrossSplits } from '../packages/model/src/data/patient-groups.js';
import { prepareTaskData } from '../packages/model/src/data/prepare-task-data.js';
import { splitByGroups } from '../packages/model/src/data/split.js';
import { evaluateModel, type EvaluationResult } from '../packages/model/src/eval/evaluate.js';
import { reviewImageName, writeReviewPack } from '../packages/model/src/eval/review-pack.js';
import { writeInitialArtifact } from '../packages/model/src/model/initial-artifact.js';
import { loadModel } from '../packages/model/src/model/loaded-model.js';
import type { ModelManifest } from '../packages/model/src/model/manifest.js';
import { calibrateArtifact } from '../packages/model/src/train/calibrate-artifact.js';
import { trainModel } from '../packages/model/src/train/train-model.js';
import { blobSlice } from './helpers/blob-slice.js';
import { dicomFile } from './helpers/dicom-file.js';
import { REPO_ROOT } from './helpers/index.js';

const SIDE = 48;

const slice = (seed: number) => blobSlice(seed, SIDE);

const concat = (parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** A manifest's metrics on the test split: metrics.json holds, per split, what evaluating the model on it gave. */
const testMetrics = (manifest: ModelManifest) => manifest.metrics?.test as EvaluationResult | undefined;

/** Runs `btd split --json` and returns what it prints. */
async function btdSplit(...args: string[]): Promise<Record<string, unknown>> {
  const bin = path.join(REPO_ROOT, 'packages/model/bin/btd.js');
  const { stdout } = await promisify(execFile)('node', [bin, 'split', '--task', 'tumor-binary', '--input-size', '32', '--json', ...args], { cwd: REPO_ROOT });
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('splits that keep each patient on one side', () => {
  let dir: string;
  let dicomDir: string;
  let pngDir: string;
  const patientsPerClass = 10;
  const slicesPerPatient = 3;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'btd-patient-split-'));
    dicomDir = path.join(dir, 'dicom');
    pngDir = path.join(dir, 'png');
    let seed = 1;
    for (const [folder, prefix] of [['yes', 'T'], ['no', 'H']] as const) {
      await mkdir(path.join(dicomDir, folder), { recursive: true });
      await mkdir(path.join(pngDir, folder), { recursive: true });
      for (let p = 0; p < patientsPerClass; p++) {
        const patient = { id: `${prefix}${p}`, issuer: 'HOSP' };
        const identifiers = { studyInstanceUid: `1.2.826.0.1.${folder === 'yes' ? 1 : 2}.${p}` };
        for (let s = 0; s < slicesPerPatient; s++) {
          const pixels = slice(seed++);
          await writeFile(path.join(dicomDir, folder, `${prefix}${p}-${s}.dcm`), dicomFile({ width: SIDE, height: SIDE, bitsAllocated: 8, pixels, patient, identifiers }));
          await sharp(Buffer.from(pixels), { raw: { width: SIDE, height: SIDE, channels: 1 } }).png().toFile(path.join(pngDir, folder, `${prefix}${p}-${s}.png`));
        }
      }
    }
    // A multi-frame series without a Patient ID or a study, and a file as a PACS exports it: no extension.
    await writeFile(
      path.join(dicomDir, 'yes', 'series.dcm'),
      dicomFile({ width: SIDE, height: SIDE, bitsAllocated: 8, frames: 3, pixels: concat([slice(900), slice(901), slice(902)]) }),
    );
    await writeFile(path.join(dicomDir, 'no', 'IM0001'), dicomFile({ width: SIDE, height: SIDE, bitsAllocated: 8, pixels: slice(903), patient: { id: 'H0', issuer: 'HOSP' } }));
    await writeFile(path.join(dicomDir, 'no', 'NOTES'), 'not an image');
    await writeFile(
      path.join(dir, 'patients.csv'),
      ['path,patient', ...['yes', 'no'].flatMap((f) => Array.from({ length: patientsPerClass * slicesPerPatient }, (_, i) => `${f}/${f === 'yes' ? 'T' : 'H'}${Math.floor(i / slicesPerPatient)}-${i % slicesPerPatient}.png,${f}${Math.floor(i / slicesPerPatient)}`)), 'yes/missing.png,x'].join('\n'),
    );
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeModel(): Promise<string> {
    const out = path.join(dir, 'model');
    await writeInitialArtifact({ task: 'tumor-binary', outDir: out });
    return out;
  }

  it('lists each frame of a multi-frame file as an image, and DICOM files without an extension', async () => {
    const { files } = await listLabeledImages(dicomDir, 'tumor-binary');
    const series = files.filter((f) => f.relPath.startsWith('yes/series.dcm'));
    expect(series.map((f) => [f.relPath, f.frame])).toEqual([
      ['yes/series.dcm#frame=1', 0],
      ['yes/series.dcm#frame=2', 1],
      ['yes/series.dcm#frame=3', 2],
    ]);
    expect(series.every((f) => f.patient === undefined && f.study === undefined)).toBe(true);
    const exported = files.find((f) => f.relPath === 'no/IM0001');
    expect(exported?.patient).toBe('HOSP/H0');
    expect(files.some((f) => f.relPath === 'no/NOTES')).toBe(false);
    expect(files.find((f) => f.relPath === 'yes/T3-1.dcm')).toMatchObject({ patient: 'HOSP/T3', study: '1.2.826.0.1.1.3' });
  });

  it('writes a review overlay for each wrong frame of a multi-frame file, from that frame', async () => {
    const model = await loadModel(await writeModel());
    try {
      const wrong = [1, 3].map((n) => ({ relPath: `yes/series.dcm#frame=${n}`, actual: 'tumor', predicted: 'no_tumor', probability: 0.9, group: 'yes/series.dcm#frame=1', groupSize: 3 }));
      const review = path.join(dir, 'review');
      const index = await readFile(await writeReviewPack(model, dicomDir, wrong, review), 'utf8');
      expect(wrong.map((e) => reviewImageName(e.relPath))).toEqual(['yes__series-frame1.png', 'yes__series-frame3.png']);
      const overlays = await Promise.all(wrong.map(async (e) => sharp(path.join(review, reviewImageName(e.relPath))).raw().toBuffer({ resolveWithObject: true })));
      expect(overlays.map((o) => [o.info.width, o.info.height])).toEqual([[SIDE, SIDE], [SIDE, SIDE]]);
      // Frames 1 and 3 are different slices: an overlay drawn from the first frame each time would repeat itself.
      expect(overlays[0]!.data.equals(overlays[1]!.data)).toBe(false);
      expect(index).toContain('`yes/series.dcm#frame=3`');
    } finally {
      model.dispose();
    }
  });

  it('counts errors, and resamples the accuracy, by patient, study and multi-frame file where the images have them', async () => {
    const model = await loadModel(await writeModel());
    try {
      const dicom = await evaluateModel(model, dicomDir);
      expect(dicom.n).toBe(2 * patientsPerClass * slicesPerPatient + 4);
      // 20 patients (IM0001 is one of H0's) and the multi-frame series, against 64 images none of which is a copy.
      expect(dicom.byGroup?.groups).toBe(2 * patientsPerClass + 1);
      // The series has neither a patient nor a study, so the verdicts by patient leave it out.
      expect(dicom.byPatient).toMatchObject({ patients: 2 * patientsPerClass, images: 2 * patientsPerClass * slicesPerPatient + 1, tumourPatients: patientsPerClass });
      const pngs = await evaluateModel(model, pngDir);
      expect(pngs.byGroup?.groups).toBe(2 * patientsPerClass * slicesPerPatient);
      expect(pngs.byPatient).toBeUndefined();
      expect((await evaluateModel(model, pngDir, { patientsFile: path.join(dir, 'patients.csv') })).byGroup?.groups).toBe(2 * patientsPerClass);
    } finally {
      model.dispose();
    }
  });

  it('keeps every patient, study and multi-frame file in one split, where near-duplicate groups alone would not', async () => {
    const prepared = await prepareTaskData({ task: 'tumor-binary', dataDir: dicomDir, inputSize: 32, seed: 3 });
    const { files } = prepared.dataset;
    expect(files).toHaveLength(2 * patientsPerClass * slicesPerPatient + 4);
    // Each frame is decoded on its own: the three frames of the series give three different inputs.
    const area = 32 * 32;
    const frameInputs = files.flatMap((f, i) => (f.frame === undefined ? [] : [Buffer.from(prepared.dataset.pixels.subarray(i * area, (i + 1) * area)).toString('hex')]));
    expect(new Set(frameInputs).size).toBe(3);

    const splitOf = prepared.split.assignments.map((a) => a.split);
    expect(prepared.patientsAcrossSplits).toBe(0);
    expect(patientsAcrossSplits(files, splitOf)).toEqual([]);
    expect(new Set(files.flatMap((f, i) => (f.frame === undefined ? [] : [splitOf[i]]))).size).toBe(1);
    expect(prepared.patientGrouping).toMatchObject({ patients: 2 * patientsPerClass, imagesWithPatient: 2 * patientsPerClass * slicesPerPatient + 1, studies: 2 * patientsPerClass, multiFrameFiles: 1 });
    // No two slices are copies, so joining patients is what made the groups; split by copies alone, patients straddle.
    const nearDuplicates = groupNearDuplicates(signatures(prepared.dataset.pixels, files.length, 32));
    expect(nearDuplicates.duplicateGroups).toBe(0);
    expect(prepared.patientGrouping?.groupsAfter).toBe(2 * patientsPerClass + 1);
    const byCopiesAlone = splitByGroups(files, nearDuplicates.groupOf, prepared.split);
    expect(patientsAcrossSplits(files, byCopiesAlone.assignments.map((a) => a.split)).length).toBeGreaterThan(0);
  });

  it('records the patients in a trained model\'s manifest, and its test verdicts by patient', async () => {
    const out = path.join(dir, 'trained');
    const { manifest } = await trainModel({ task: 'tumor-binary', dataDir: dicomDir, outDir: out, epochs: 1, inputSize: 32, filters: [4, 8], convsPerBlock: 1, workers: 1, seed: 3 });
    expect(manifest.split?.patients).toMatchObject({ patients: 2 * patientsPerClass, studies: 2 * patientsPerClass, multiFrameFiles: 1, groupsAfter: 2 * patientsPerClass + 1, acrossSplits: 0 });
    const splitText = await readFile(path.join(out, 'split.json'), 'utf8');
    // Counts only: no patient's ID (HOSP/T0 … HOSP/H9) is written into the artifact.
    for (const text of [splitText, await readFile(path.join(out, 'manifest.json'), 'utf8')]) expect(text).not.toMatch(/HOSP\/[TH]\d/);
    const split = JSON.parse(splitText) as { assignments: { relPath: string; split: string }[] };
    expect(split.assignments.filter((a) => a.relPath.startsWith('yes/series.dcm#frame=')).map((a) => a.split)).toSatisfy((splits: string[]) => splits.length === 3 && new Set(splits).size === 1);
    // Slices are named <patient>-<n>.dcm; IM0001 is H0's.
    const patientOf = (relPath: string) => (relPath === 'no/IM0001' ? 'H0' : relPath.split('/')[1]!.split('-')[0]);
    const testPatients = new Set(split.assignments.filter((a) => a.split === 'test' && !a.relPath.includes('series')).map((a) => patientOf(a.relPath)));
    expect(testPatients.size).toBeGreaterThan(0);
    expect(testMetrics(manifest)?.byPatient?.patients).toBe(testPatients.size);
  });

  it('counts by the same patients when a model trained with a patients file is calibrated again', async () => {
    const out = path.join(dir, 'trained-png');
    const patientsFile = path.join(dir, 'patients.csv');
    const { manifest } = await trainModel({ task: 'tumor-binary', dataDir: pngDir, outDir: out, epochs: 1, inputSize: 32, filters: [4, 8], convsPerBlock: 1, workers: 1, seed: 3, patientsFile });
    const trained = testMetrics(manifest);
    expect(trained?.byPatient?.patients).toBeGreaterThan(0);
    const calibrated = testMetrics(await calibrateArtifact({ modelDir: out, dataDir: pngDir }));
    expect(calibrated?.byPatient?.patients).toBe(trained?.byPatient?.patients);
    expect(calibrated?.byGroup?.groups).toBe(trained?.byGroup?.groups);
  });

  it("takes whose each scan is from the run's own listing, never from a cache another run wrote, and caches no patient's ID", async () => {
    const cacheDir = path.join(dir, 'cache-shared');
    const cacheEntries = async () => (await readdir(cacheDir)).filter((name) => name.endsWith('.json'));
    const model = await loadModel(await writeModel());
    try {
      // An evaluation with the patients file writes the cache of the PNG folder, one of the DICOM folder follows.
      const withFile = await evaluateModel(model, pngDir, { cacheDir, patientsFile: path.join(dir, 'patients.csv') });
      expect(withFile.byPatient?.patients).toBe(2 * patientsPerClass);
      expect((await evaluateModel(model, pngDir, { cacheDir })).byPatient).toBeUndefined();
      await evaluateModel(model, dicomDir, { cacheDir });
    } finally {
      model.dispose();
    }
    const entries = await cacheEntries();
    expect(entries).toHaveLength(2);
    const fresh = await prepareTaskData({ task: 'tumor-binary', dataDir: pngDir, inputSize: model.manifest.inputSize, seed: 1 });
    const fromCache = await prepareTaskData({ task: 'tumor-binary', dataDir: pngDir, inputSize: model.manifest.inputSize, seed: 1, cacheDir });
    expect(await cacheEntries()).toEqual(entries);
    expect(fromCache.patientGrouping).toBeUndefined();
    expect(fromCache.split.fingerprint).toBe(fresh.split.fingerprint);
    for (const name of entries) {
      const text = await readFile(path.join(cacheDir, name), 'utf8');
      expect(text).not.toContain('"patient"');
      expect(text).not.toContain('"study"');
    }
  });

  it('takes patients from a patients file for images without DICOM headers, and reports it in the leakage report', async () => {
    const report = await btdSplit('--data', pngDir, '--patients', path.join(dir, 'patients.csv'), '--cache', path.join(dir, 'cache'));
    expect(report.patients).toMatchObject({ patients: 2 * patientsPerClass, imagesWithPatient: 2 * patientsPerClass * slicesPerPatient, acrossSplits: 0, unmatchedEntries: 1, groupsAfter: 2 * patientsPerClass });
    expect(report.straddlingGroups).toBe(0);
    // Without the file the report says nothing of patients, and the split is that of the copies alone.
    const without = await btdSplit('--data', pngDir, '--cache', path.join(dir, 'cache'));
    expect(without.patients).toBeUndefined();
    expect(without.fingerprint).not.toBe(report.fingerprint);
    // That split, checked with the patients: its straddling patients are leaks, and --json exits with 1 too.
    const copiesOnly = path.join(dir, 'copies-only-split.json');
    await btdSplit('--data', pngDir, '--cache', path.join(dir, 'cache'), '--out', copiesOnly);
    const checked = await btdSplit('--data', pngDir, '--patients', path.join(dir, 'patients.csv'), '--cache', path.join(dir, 'cache'), '--split', copiesOnly).then(
      () => undefined,
      (error: { code?: number; stdout?: string }) => error,
    );
    expect(checked?.code).toBe(1);
    const leaky = JSON.parse(checked?.stdout ?? '{}') as { savedSplit?: { trainingImagesWithNearDuplicateHeldOut: number }; patients?: { acrossSplits: number } };
    expect((leaky.savedSplit?.trainingImagesWithNearDuplicateHeldOut ?? 0) + (leaky.patients?.acrossSplits ?? 0)).toBeGreaterThan(0);
    // A patients.csv at the data folder's root is read without the option.
    await copyFile(path.join(dir, 'patients.csv'), path.join(pngDir, 'patients.csv'));
    try {
      const byDefault = await btdSplit('--data', pngDir, '--cache', path.join(dir, 'cache'));
      expect(byDefault.fingerprint).toBe(report.fingerprint);
      expect(byDefault.patients).toMatchObject({ file: path.relative(REPO_ROOT, path.join(pngDir, 'patients.csv')), acrossSplits: 0 });
    } finally {
      await rm(path.join(pngDir, 'patients.csv'));
    }
  });

  it("reads a separate test folder's own patients file, and counts its images of patients the data folder holds", async () => {
    const testDir = path.join(dir, 'png-test');
    await mkdir(path.join(testDir, 'yes'), { recursive: true });
    await mkdir(path.join(testDir, 'no'), { recursive: true });
    for (const [name, seed] of [['yes/a.png', 700], ['yes/b.png', 701], ['no/c.png', 702]] as const) {
      await sharp(Buffer.from(slice(seed)), { raw: { width: SIDE, height: SIDE, channels: 1 } }).png().toFile(path.join(testDir, name));
    }
    // yes0 has slices in the data folder; the other two patients do not.
    await writeFile(path.join(testDir, 'patients.csv'), 'path,patient\nyes/a.png,yes0\nyes/b.png,elsewhere\nno/c.png,new\n');
    const report = await btdSplit('--data', pngDir, '--patients', path.join(dir, 'patients.csv'), '--test-data', testDir, '--cache', path.join(dir, 'cache'));
    expect(report.externalTest).toEqual({ images: 3, withNearDuplicateInData: 0, withPatientInData: 1 });
  });

  it('refuses a patients file without the path and patient columns', async () => {
    const bad = path.join(dir, 'bad.csv');
    await writeFile(bad, 'file,subject\nyes/T0-0.png,1\n');
    await expect(btdSplit('--data', pngDir, '--patients', bad)).rejects.toThrow(/expected a header row with the columns path and patient, found file, subject/);
  });
});
