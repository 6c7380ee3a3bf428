import { move, transferableSymbol, valueSymbol } from 'piscina';
import { readDicom, type DecodeLimits, type DicomFindings } from './dicom-reading.js';

/** One file to read: its bytes (moved to the thread, or shared) and the limits within which its frames are decoded. */
export interface DicomReadTask {
  bytes: Uint8Array;
  limits?: DecodeLimits;
}

/** What the thread found, with the bytes it was given, which go back to the caller. */
export interface DicomReadResult {
  bytes: Uint8Array;
  findings: DicomFindings;
}

/** A piscina task: reads one DICOM file (see readDicom) and moves its bytes back, uncopied. */
export default async function readDicomTask({ bytes, limits }: DicomReadTask): Promise<DicomReadResult> {
  const findings = await readDicom(bytes, limits);
  const result: DicomReadResult = { bytes, findings };
  if (!(bytes.buffer instanceof ArrayBuffer)) return result;
  // Returned as moved: the caller's own copy was moved here, and goes back the same way.
  return move({ [transferableSymbol]: [bytes.buffer], [valueSymbol]: result }) as unknown as DicomReadResult;
}
