import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { MessagePort } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { dicomDecodeBytes, type DecodeAdmission } from './decode-memory.js';
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

/**
 * A decode of at least this many bytes (by its header) is followed by a garbage collection of the
 * thread's heap: left to V8, the floats and grey levels of a 7000×7000 frame (500 MB) were still held
 * when the next file's frames decoded, so that eight such files sent at once, decoded one after the
 * other (MAX_INFLIGHT_DECODE_BYTES holds one such decode), took the API 1,418 MiB above its resting
 * memory, against 587 MiB collected after each (`bench/upload-memory.js`, medians of 3 runs). A
 * 512×512 slice's decode (4 MiB) is far below it, and costs no collection.
 */
const COLLECT_AFTER_BYTES = 64 * 2 ** 20;
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** The answer on a task's admission port: the decode may start, or it may not (why). */
export type DecodeGrant = { admitted: true } | { admitted: false; reason: string };

/**
 * Asks the API's event loop, which holds the budget, for a read's memory, and waits for its answer. Before
 * it asks for a large amount, the thread collects its garbage: a deflated file's inflated data set, which
 * the read drops before it waits for more than the inflation was let in with, is then no longer held.
 */
function askOver(port: MessagePort): DecodeAdmission {
  return async (bytes) =>
    new Promise((resolve, reject) => {
      if (bytes >= COLLECT_AFTER_BYTES) collectGarbage();
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
  // Before the task ends, and so before its decode's memory goes back to MAX_INFLIGHT_DECODE_BYTES.
  const { header } = findings;
  if (limits && header && dicomDecodeBytes(header.width, header.height) >= COLLECT_AFTER_BYTES) collectGarbage();
  const result: DicomReadResult = { bytes, findings };
  if (!(bytes.buffer instanceof ArrayBuffer)) return result;
  // Returned as moved: the caller's own copy was moved here, and goes back the same way.
  return move({ [transferableSymbol]: [bytes.buffer], [valueSymbol]: result }) as unknown as DicomReadResult;
}
