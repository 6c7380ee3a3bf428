import { parse } from 'csv-parse/sync';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseItemPath, type LabeledFile } from './dataset-folder.js';

/** Patient per image path relative to the dataset folder (`yes/y0.jpg`); a file's entry covers all its frames. */
export type PatientsByPath = ReadonlyMap<string, string>;

function fromRows(rows: Record<string, string>[], file: string): Map<string, string> {
  if (rows.length === 0) throw new Error(`${file}: no entries`);
  const columns = Object.keys(rows[0] ?? {});
  const find = (name: string) => columns.find((c) => c.trim().toLowerCase() === name);
  const pathColumn = find('path');
  const patientColumn = find('patient');
  if (!pathColumn || !patientColumn) throw new Error(`${file}: expected a header row with the columns path and patient, found ${columns.join(', ') || 'none'}`);
  return fromEntries(rows.map((row) => [row[pathColumn] ?? '', row[patientColumn] ?? '']), file);
}

function fromEntries(entries: [string, unknown][], file: string): Map<string, string> {
  const out = new Map<string, string>();
  entries.forEach(([relPath, patient], i) => {
    const id = typeof patient === 'number' ? String(patient) : patient;
    if (!relPath.trim() || typeof id !== 'string' || !id.trim()) throw new Error(`${file}: entry ${i + 1} needs a path and a patient`);
    const key = relPath.trim().replaceAll('\\', '/');
    if (out.has(key) && out.get(key) !== id.trim()) throw new Error(`${file}: ${key} is given two patients`);
    out.set(key, id.trim());
  });
  return out;
}

/**
 * Reads which patient each image belongs to: a CSV file with a header row naming the columns `path`
 * and `patient`, or a JSON object from path to patient.
 */
export async function readPatientsFile(file: string): Promise<PatientsByPath> {
  const text = await readFile(file, 'utf8');
  if (path.extname(file).toLowerCase() === '.json') {
    const parsed = JSON.parse(text) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${file}: expected an object from image path to patient`);
    return fromEntries(Object.entries(parsed), file);
  }
  let rows: Record<string, string>[];
  try {
    rows = parse(text, { columns: true, skip_empty_lines: true, trim: true, bom: true }) as Record<string, string>[];
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
  return fromRows(rows, file);
}

const DEFAULT_NAMES = ['patients.csv', 'patients.json'];

const isFile = async (file: string): Promise<boolean> => (await stat(file).catch(() => null))?.isFile() ?? false;

/** `patients.csv` or `patients.json` at a dataset folder's root, when there is one. */
export async function defaultPatientsFile(dataDir: string): Promise<string | undefined> {
  for (const name of DEFAULT_NAMES) {
    const file = path.join(dataDir, name);
    if (await isFile(file)) return file;
  }
  return undefined;
}


/**
 * The files with the patients a patients file gives them, in place of any their DICOM header gave,
 * and the file's entries that match no image (a typo, or an image left out of this run).
 */
export function withPatients<T extends LabeledFile>(files: readonly T[], patients: PatientsByPath): { files: T[]; unmatched: string[] } {
  const used = new Set<string>();
  const out = files.map((f) => {
    const key = patients.has(f.relPath) ? f.relPath : parseItemPath(f.relPath).file;
    const patient = patients.get(key);
    if (patient === undefined) return f;
    used.add(key);
    return { ...f, patient };
  });
  return { files: out, unmatched: [...patients.keys()].filter((k) => !used.has(k)) };
}

/** What a patients file gave a run: the file, how many entries it has, and those that match no image. */
export interface PatientsFileRecord {
  file: string;
  entries: number;
  unmatched: string[];
}

/**
 * Images with the patients that `file`, or else the patients file at `dataDir`'s root, gives them;
 * unchanged, without a record, when there is neither.
 */
export async function withPatientsFile<T extends LabeledFile>(
  files: readonly T[],
  dataDir: string,
  file?: string,
): Promise<{ files: T[]; patientsFile?: PatientsFileRecord }> {
  const chosen = file ?? (await defaultPatientsFile(dataDir));
  if (!chosen) return { files: [...files] };
  const patients = await readPatientsFile(chosen);
  const applied = withPatients(files, patients);
  return { files: applied.files, patientsFile: { file: chosen, entries: patients.size, unmatched: applied.unmatched } };
}

/**
 * The images of a trained artifact's dataset folder with the patients its split was drawn with:
 * from the patients file its manifest records (`split.patients.file`, relative to where it was
 * trained) while that file is there, else from the folder's own patients file, if any. Evaluating
 * the artifact again then counts errors, and resamples its interval, by the same patients.
 */
export async function withRecordedPatients<T extends LabeledFile>(files: readonly T[], dataDir: string, recorded: string | undefined): Promise<T[]> {
  const file = recorded ? path.resolve(recorded) : undefined;
  return (await withPatientsFile(files, dataDir, file && (await isFile(file)) ? file : undefined)).files;
}
