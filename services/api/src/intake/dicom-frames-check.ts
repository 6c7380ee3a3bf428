import { availableParallelism } from 'node:os';
import { ImageDecodeError } from '@btd/model';
import { threadScript } from '@btd/shared';
import { Piscina } from 'piscina';
import { decodeEveryFrame } from './decode-every-frame.js';
import type { DicomCheckResult, DicomCheckTask } from './dicom-check.worker.js';

/** Proves that every frame of a DICOM file decodes (see decodeEveryFrame). */
export interface DicomFramesCheck {
  verify(bytes: Uint8Array, maxPixels: number): Promise<void>;
  /** Ends the threads, if any; idempotent. */
  close(): Promise<void>;
}

/** The intake threads failed (not the file): an error of the service, never a refusal of the upload. */
export class DicomFramesCheckUnavailable extends Error {
  constructor(cause: unknown) {
    super(`DICOM frames could not be checked: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'DicomFramesCheckUnavailable';
  }
}

/** On the calling thread: the WebAssembly decoders hold it for the whole decode of each frame. */
export function inlineDicomFramesCheck(): DicomFramesCheck {
  return { verify: decodeEveryFrame, close: async () => {} };
}

/**
 * On a pool of `threads` worker threads (piscina), so that a JPEG 2000 frame (about 35 ms of CPU for
 * a 512×512 slice) does not hold the event loop, and the frames of a request decode side by side.
 * A refusal comes back as the same ImageDecodeError the decoder threw; a failure of the threads
 * themselves as DicomFramesCheckUnavailable. `script` is the task's module (this package's own by default).
 */
export function pooledDicomFramesCheck(threads: number, script = threadScript(import.meta.url, 'dicom-check.worker').href): DicomFramesCheck {
  const pool = new Piscina<DicomCheckTask, DicomCheckResult>({ filename: script, minThreads: 0, maxThreads: threads, idleTimeout: 30_000 });
  let closing: Promise<void> | undefined;
  return {
    async verify(bytes, maxPixels) {
      const result = await pool.run({ bytes, maxPixels }).catch((error: unknown) => {
        throw new DicomFramesCheckUnavailable(error);
      });
      if (result.ok) return;
      throw result.decode ? new ImageDecodeError(result.message, { unsupported: result.unsupported }) : new Error(result.message);
    },
    close: () => (closing ??= pool.destroy()),
  };
}

/** The check a configuration asks for: `threads` 0 decodes on the event loop; absent, one thread per core (at most 4). */
export function dicomFramesCheck(threads: number | undefined): DicomFramesCheck {
  const count = threads ?? Math.min(4, availableParallelism());
  return count === 0 ? inlineDicomFramesCheck() : pooledDicomFramesCheck(count);
}
