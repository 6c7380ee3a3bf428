import sharp from 'sharp';
import { isDicom, readDicomHeader } from '@btd/model';
import { MemoryBudget } from '@btd/shared';
import type { WorkerMetrics } from './worker-metrics.js';

/**
 * Bytes a job holds per pixel of a raster image (PNG, JPEG…) while it decodes and analyses it: the grey
 * levels for the models and their crop, the RGB image the overlay is drawn on and its copy, and sharp's
 * buffers. Measured (`bench/worker-memory.js`): one 8000×8000 job took 551 MiB above the worker's rest
 * for a PNG and 501 MiB for a JPEG, 9.0 and 8.2 bytes per pixel.
 */
export const RASTER_JOB_BYTES_PER_PIXEL = 10;

/**
 * The same for a DICOM frame, whose decode holds its values as 64-bit floats besides: one 8000×8000
 * baseline JPEG frame took 903 MiB, 14.8 bytes per pixel.
 */
export const DICOM_JOB_BYTES_PER_PIXEL = 16;

/** WORKER_MAX_INFLIGHT_DECODE_BYTES by default: one job of the largest image (64 million pixels) at a time, two of up to 53 million. */
export const DEFAULT_MAX_INFLIGHT_DECODE_BYTES = 1024 * 1024 * 1024;

/**
 * Bytes a job's image will hold while it is decoded and analysed, from its header; 0 for one whose
 * header does not read (its decode then fails at once, saying why).
 */
export async function jobDecodeBytes(image: Uint8Array): Promise<number> {
  try {
    if (isDicom(image)) {
      const { width, height } = readDicomHeader(image);
      return width * height * DICOM_JOB_BYTES_PER_PIXEL;
    }
    const { width = 0, height = 0 } = await sharp(image).metadata();
    return width * height * RASTER_JOB_BYTES_PER_PIXEL;
  } catch {
    return 0;
  }
}

/**
 * The memory the jobs of one worker process decode in at once (WORKER_MAX_INFLIGHT_DECODE_BYTES), with
 * its state on the worker's metrics when given.
 */
export function createDecodeMemory(limitBytes: number, metrics?: WorkerMetrics): MemoryBudget {
  return new MemoryBudget(limitBytes, 'WORKER_MAX_INFLIGHT_DECODE_BYTES', {
    changed: ({ heldBytes, waiting }) => {
      metrics?.decodeBytes.set(heldBytes);
      metrics?.decodesWaiting.set(waiting);
    },
    waited: () => metrics?.decodeWaits.inc(),
  });
}

/**
 * Runs a job's decode and analysis of `bytes` within `memory`: once the jobs ahead of it have given back
 * enough. An image larger than the whole budget is not refused: it waits for every other job's decode
 * to end and is decoded alone, holding the whole budget meanwhile.
 */
export async function decodeWithin<T>(memory: MemoryBudget, bytes: number, work: () => Promise<T>): Promise<T> {
  return memory.run(Math.min(bytes, memory.limitBytes), work);
}
