import { availableParallelism } from 'node:os';
import { threadScript } from '@btd/shared';
import { Piscina } from 'piscina';
import type { DicomReadResult, DicomReadTask } from './dicom-read.worker.js';
import { readDicom, type DecodeLimits, type DicomFindings } from './dicom-reading.js';

/** A DICOM file read once (see readDicom): what was found, and the file's bytes to use from then on. */
export interface DicomReading extends DicomFindings {
  /** The bytes read: those given, or the same bytes moved back from the thread that read them (those given are then emptied). */
  readonly bytes: Uint8Array;
}

/** Reads DICOM uploads: header and frames, one parse per file. */
export interface DicomReader {
  /** Reads `bytes`; with `limits`, decodes every frame when the header is within them, else reads the header only. */
  read(bytes: Uint8Array, limits?: DecodeLimits): Promise<DicomReading>;
  /** Files read so far, each once per request: on the intake threads, or on the event loop. */
  readonly reads: { readonly onThreads: number; readonly onEventLoop: number };
  /** Ends the threads, if any; idempotent. */
  close(): Promise<void>;
}

/** The intake threads failed (not the file): an error of the service, never a refusal of the upload. */
export class DicomReaderUnavailable extends Error {
  constructor(cause: unknown) {
    super(`DICOM frames could not be checked: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'DicomReaderUnavailable';
  }
}

/** On the calling thread: parsing (a deflated file's inflating) and the WebAssembly decoders hold it throughout. */
export function inlineDicomReader(): DicomReader {
  const reads = { onThreads: 0, onEventLoop: 0 };
  return {
    reads,
    async read(bytes, limits) {
      reads.onEventLoop++;
      return { bytes, ...(await readDicom(bytes, limits)) };
    },
    close: async () => {},
  };
}

/**
 * What to send a thread: the bytes themselves when they are all of their buffer (moved, so that the
 * thread reads them uncopied and moves them back) or in shared memory; else a copy of those bytes only,
 * where a clone would copy the whole buffer they are a view of (Node's pool of small Buffers, say).
 */
function sendable(bytes: Uint8Array): { sent: Uint8Array; transferList: ArrayBuffer[] } {
  const { buffer } = bytes;
  if (!(buffer instanceof ArrayBuffer)) return { sent: bytes, transferList: [] };
  const sent = bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength ? bytes : bytes.slice();
  return { sent, transferList: [sent.buffer as ArrayBuffer] };
}

/**
 * On a pool of `threads` worker threads (piscina), so that neither the parse (about 30 ms for a
 * deflated file, which is inflated first) nor a JPEG 2000 frame's decode (about 35 ms for a 512×512
 * slice) holds the event loop, and the files of a request are read side by side. A failure of the
 * threads themselves is a DicomReaderUnavailable. `script` is the task's module (this package's own by default).
 */
export function pooledDicomReader(threads: number, script = threadScript(import.meta.url, 'dicom-read.worker').href): DicomReader {
  const pool = new Piscina<DicomReadTask, DicomReadResult>({ filename: script, minThreads: 0, maxThreads: threads, idleTimeout: 30_000 });
  let closing: Promise<void> | undefined;
  const reads = { onThreads: 0, onEventLoop: 0 };
  return {
    reads,
    async read(bytes, limits) {
      reads.onThreads++;
      const { sent, transferList } = sendable(bytes);
      // Only the limits the thread reads: the caller's may carry more (a study form's callbackUrl policy holds functions, which cannot be posted).
      const task: DicomReadTask = { bytes: sent, ...(limits ? { limits: { maxPixels: limits.maxPixels, maxImages: limits.maxImages } } : {}) };
      const result = await pool.run(task, { transferList }).catch((error: unknown) => {
        throw new DicomReaderUnavailable(error);
      });
      // A copy was sent when the bytes were a view of a larger buffer: the caller's bytes stay theirs.
      return { ...result.findings, bytes: sent === bytes ? result.bytes : bytes };
    },
    close: () => (closing ??= pool.destroy()),
  };
}

/** The reader a configuration asks for: `threads` 0 reads on the event loop; absent, one thread per core (at most 4). */
export function dicomReader(threads: number | undefined): DicomReader {
  const count = threads ?? Math.min(4, availableParallelism());
  return count === 0 ? inlineDicomReader() : pooledDicomReader(count);
}
