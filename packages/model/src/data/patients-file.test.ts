import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabeledFile } from './dataset-folder.js';
import { defaultPatientsFile, readPatientsFile, withPatients } from './patients-file.js';

describe('patients files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'btd-patients-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function read(name: string, text: string) {
    const file = path.join(dir, name);
    await writeFile(file, text);
    return readPatientsFile(file);
  }

  it('reads a CSV by its header, in any column order, with a byte-order mark and quoted fields', async () => {
    const patients = await read('a.csv', '\uFEFFPatient,Path\n"P 1","yes/a, b.png"\nP2,no\\c.png\n\n');
    expect([...patients]).toEqual([
      ['yes/a, b.png', 'P 1'],
      ['no/c.png', 'P2'],
    ]);
  });

  it('reads a JSON object from path to patient', async () => {
    expect([...(await read('b.json', '{"yes/a.png": "P1", "no/b.png": 7}'))]).toEqual([
      ['yes/a.png', 'P1'],
      ['no/b.png', '7'],
    ]);
    await expect(read('c.json', '[["yes/a.png", "P1"]]')).rejects.toThrow(/expected an object from image path to patient/);
  });

  it('refuses an entry without a patient, and a path given two patients', async () => {
    await expect(read('d.csv', 'path,patient\nyes/a.png,\n')).rejects.toThrow(/entry 1 needs a path and a patient/);
    await expect(read('e.csv', 'path,patient\nyes/a.png,P1\nyes/a.png,P2\n')).rejects.toThrow(/yes\/a.png is given two patients/);
    await expect(read('f.csv', 'path,patient\n"yes/a.png,P1\n')).rejects.toThrow(/f\.csv: /);
  });

  it("gives a file's entry to each of its frames, a frame's own entry first, and lists entries that match no image", () => {
    const file = (relPath: string, frame?: number): LabeledFile => ({ path: `/d/${relPath}`, relPath, label: 'tumor', size: 1, mtimeMs: 0, ...(frame === undefined ? {} : { frame }) });
    const files = [file('yes/s.dcm#frame=1', 0), file('yes/s.dcm#frame=2', 1), file('yes/t.dcm'), file('no/u.png')];
    const patients = new Map([
      ['yes/s.dcm', 'P1'],
      ['yes/s.dcm#frame=2', 'P9'],
      ['yes/t.dcm', 'P2'],
      ['yes/gone.png', 'P3'],
    ]);
    const { files: out, unmatched } = withPatients(files, patients);
    expect(out.map((f) => f.patient)).toEqual(['P1', 'P9', 'P2', undefined]);
    expect(unmatched).toEqual(['yes/gone.png']);
  });

  it('finds patients.csv, then patients.json, at a folder root', async () => {
    const folder = await mkdtemp(path.join(dir, 'root-'));
    expect(await defaultPatientsFile(folder)).toBeUndefined();
    await writeFile(path.join(folder, 'patients.json'), '{}');
    expect(await defaultPatientsFile(folder)).toBe(path.join(folder, 'patients.json'));
    await writeFile(path.join(folder, 'patients.csv'), 'path,patient\n');
    expect(await defaultPatientsFile(folder)).toBe(path.join(folder, 'patients.csv'));
  });
});
