import type { MessagePort } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import type { DecodeAdmission } from './decode-memory.js';
import { readDicom, type DecodeLimits, type DicomFindings } from './dicom-reading.js';

/**
 * One file to read: its bytes (moved to the thread, or shared), the limits within which its frames are
 * decoded and, when decodes share a memory budget, the port on which to ask for their memory (see `DecodeGrant`).
 */
export interface DicomReadTask {
  bytes: Uint8Array;
  limits?: DecodeLimits;
  admission?: MessagePort;
}

/** The answer on a task's admission port: the decode may start, or it may not (why). */
export type DecodeGrant = { admitted: true } | { admitted: false; reason: string };

/** Asks the API's event loop, which holds the budget, for a decode's memory, and waits for its answer. */
function askOver(port: MessagePort): DecodeAdmission {
  return async (bytes) =>
    new Promise((resolve, reject) => {
      port.once('message', (grant: DecodeGrant) => (grant.admitted ? resolve() : reject(new Error(grant.reason))));
      port.postMessage(bytes);
    });
}

/** What the thread found, with the bytes it was given, which go back to the caller. */
export interface DicomReadResult {
  bytes: Uint8Array;
  findings: DicomFindings;
}

/** A piscina task: reads one DICOM file (see readDicom) and moves its bytes back, uncopied. */
export default async function readDicomTask({ bytes, limits, admission }: DicomReadTask): Promise<DicomReadResult> {
  let findings: DicomFindings;
  try {
    findings = await readDicom(bytes, limits, admission && askOver(admission));
  } finally {
    admission?.close();
  }
  const result: DicomReadResult = { bytes, findings };
  if (!(bytes.buffer instanceof ArrayBuffer)) return result;
  // Returned as moved: the caller's own copy was moved here, and goes back the same way.
  return move({ [transferableSymbol]: [bytes.buffer], [valueSymbol]: result }) as unknown as DicomReadResult;
}
