import { open, readFile } from 'node:fs/promises';
import { isDicom, readDicomHeader, type DicomHeader } from './dicom.js';

/** What listing a dataset needs of a DICOM file: how many images it holds and whose they are. */
export interface DicomListingEntry {
  frames: number;
  /** `<issuer>/<Patient ID>`, when the file has a Patient ID. */
  patient?: string;
  /** The Study Instance UID, when the file has one. */
  study?: string;
}

/** Headers end well before this in nearly every file; a longer one is read whole. */
const HEAD_BYTES = 64 * 1024;

async function readHead(file: string, size: number): Promise<Uint8Array> {
  if (size <= HEAD_BYTES) return readFile(file);
  const handle = await open(file, 'r');
  try {
    const head = new Uint8Array(HEAD_BYTES);
    const { bytesRead } = await handle.read(head, 0, HEAD_BYTES, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function headerOrUndefined(bytes: Uint8Array): DicomHeader | undefined {
  try {
    return readDicomHeader(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Reads a DICOM file's header (its first 64 KiB, or the whole file when the header runs longer or
 * the data set is deflated). Undefined for a file that is not DICOM or whose header cannot be read:
 * preprocessing then rejects it with the reason.
 */
export async function dicomListingEntry(file: string, size: number): Promise<DicomListingEntry | undefined> {
  const head = await readHead(file, size);
  if (!isDicom(head)) return undefined;
  const header = headerOrUndefined(head) ?? (head.length < size ? headerOrUndefined(await readFile(file)) : undefined);
  if (!header) return undefined;
  const { patient, identifiers } = header;
  return {
    frames: header.frames,
    ...(patient ? { patient: `${patient.issuer ?? ''}/${patient.id}` } : {}),
    ...(identifiers.studyInstanceUid ? { study: identifiers.studyInstanceUid } : {}),
  };
}
