import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { threadScript } from '@btd/shared';
import { Piscina } from 'piscina';
import type { DecodeMemoryBudget, DecodeRelease } from '../uploads/decode-memory-budget.js';
import { decodeLimitOf } from './decode-memory.js';
import type { DecodeGrant, DicomReadResult, DicomReadTask } from './dicom-read.worker.js';
import { readDicom, type DecodeLimits, type DicomFindings } from './dicom-reading.js';

/** A DICOM file read once (see readDicom): what was found, and the file's bytes to use from then on. */
export interface DicomReading extends DicomFindings {
  /** The bytes read: those given, or the same bytes moved back from the thread that read them (those given are then emptied). */
  readonly bytes: Uint8Array;
}

/** Reads DICOM uploads: header and frames, one parse per file. */
export interface DicomReader {
  /**
   * Reads `bytes`; with `limits`, decodes every frame when the header is within them, else reads the
   * header only. Once `signal` aborts, frames still waiting for decode memory are not decoded: the read
   * rejects with the signal's reason.
   */
  read(bytes: Uint8Array, limits?: DecodeLimits, signal?: AbortSignal): Promise<DicomReading>;
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

/**
 * The memory of one read, in `memory`: what the read asks for (a deflated file's inflation, then its
 * frames' decode), held one amount at a time, given back by `end` when the read has ended, however it
 * ended, and at once if it ended first. An amount no larger than the one held is covered by it; a larger
 * one is waited for with nothing held (a read holding memory while it waits for more could wait for
 * ever on others doing the same). An amount beyond the whole budget is taken as the whole budget.
 */
function decodeMemoryOfRead(memory: DecodeMemoryBudget, signal: AbortSignal | undefined) {
  let release: DecodeRelease | undefined;
  let held = 0;
  let ended = false;
  return {
    async take(bytes: number): Promise<void> {
      const needed = Math.min(bytes, memory.limitBytes);
      if (needed <= held) return;
      release?.();
      [release, held] = [undefined, 0];
      const taken = await memory.acquire(needed, signal);
      if (ended) taken();
      else [release, held] = [taken, needed];
    },
    end(): void {
      ended = true;
      release?.();
    },
  };
}

/** Answers the decode-memory requests a thread's task sends on `port` (see `DicomReadTask.admission`); the returned function ends them. */
function grantOver(port: MessagePort, memory: DecodeMemoryBudget, signal: AbortSignal | undefined): () => void {
  const read = decodeMemoryOfRead(memory, signal);
  port.on('message', (bytes: number) => {
    const answer = (grant: DecodeGrant) => port.postMessage(grant);
    read.take(bytes).then(
      () => answer({ admitted: true }),
      (error: unknown) => answer({ admitted: false, reason: error instanceof Error ? error.message : String(error) }),
    );
  });
  return () => {
    read.end();
    port.close();
  };
}

/** Limits as a read gives them to `readDicom`: with the most a decode may hold, when decodes share `memory`. */
function readLimits(limits: DecodeLimits | undefined, memory: DecodeMemoryBudget | undefined): DecodeLimits | undefined {
  // Only the limits readDicom reads: the caller's may carry more (a study form's callbackUrl policy holds functions, which cannot be posted to a thread).
  return limits && { maxPixels: limits.maxPixels, maxImages: limits.maxImages, ...decodeLimitOf(memory) };
}

/**
 * On the calling thread: parsing (a deflated file's inflating) and the WebAssembly decoders hold it
 * throughout. With `memory`, each file's frames decode once their memory is taken from it.
 */
export function inlineDicomReader(memory?: DecodeMemoryBudget): DicomReader {
  const reads = { onThreads: 0, onEventLoop: 0 };
  return {
    reads,
    async read(bytes, limits, signal) {
      reads.onEventLoop++;
      const decode = memory && decodeMemoryOfRead(memory, signal);
      try {
        return { bytes, ...(await readDicom(bytes, readLimits(limits, memory), decode?.take)) };
      } finally {
        decode?.end();
      }
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
 * threads themselves is a DicomReaderUnavailable. `script` is the task's module (this package's own by
 * default). With `memory`, a thread decodes a file's frames once this thread, which holds the budget,
 * has taken their memory from it (asked over a port of the task's own), and gives it back when the task ends.
 */
export function pooledDicomReader(threads: number, script = threadScript(import.meta.url, 'dicom-read.worker').href, memory?: DecodeMemoryBudget): DicomReader {
  const pool = new Piscina<DicomReadTask, DicomReadResult>({ filename: script, minThreads: 0, maxThreads: threads, idleTimeout: 30_000 });
  let closing: Promise<void> | undefined;
  const reads = { onThreads: 0, onEventLoop: 0 };
  return {
    reads,
    async read(bytes, limits, signal) {
      reads.onThreads++;
      const { sent, transferList } = sendable(bytes);
      const sentLimits = readLimits(limits, memory);
      const channel = memory && new MessageChannel();
      const endGrants = channel && memory ? grantOver(channel.port1, memory, signal) : undefined;
      const task: DicomReadTask = { bytes: sent, ...(sentLimits ? { limits: sentLimits } : {}), ...(channel ? { admission: channel.port2 } : {}) };
      const moved: (ArrayBuffer | MessagePort)[] = channel ? [...transferList, channel.port2] : transferList;
      const result = await pool
        .run(task, { transferList: moved })
        .catch((error: unknown) => {
          // Refused its decode memory because the request has gone: no failure of the threads.
          throw signal?.aborted ? signal.reason : new DicomReaderUnavailable(error);
        })
        .finally(endGrants);
      // A copy was sent when the bytes were a view of a larger buffer: the caller's bytes stay theirs.
      return { ...result.findings, bytes: sent === bytes ? result.bytes : bytes };
    },
    close: () => (closing ??= pool.destroy()),
  };
}

/** The reader a configuration asks for: `threads` 0 reads on the event loop; absent, one thread per core (at most 4). Decodes share `memory`, if given. */
export function dicomReader(threads: number | undefined, memory?: DecodeMemoryBudget): DicomReader {
  const count = threads ?? Math.min(4, availableParallelism());
  return count === 0 ? inlineDicomReader(memory) : pooledDicomReader(count, undefined, memory);
}
