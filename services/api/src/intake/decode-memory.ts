import type { DecodeMemoryBudget } from '../uploads/decode-memory-budget.js';

/**
 * Bytes a DICOM frame's decode holds per pixel, at most: its samples as stored or decompressed (up to 6,
 * for 16-bit colour), the stored values as 64-bit floats for the rescale and window (8), and the grey
 * levels (1); a colour frame holds its interleaved samples and their RGB bytes instead of the floats.
 * Measured: a 7000×7000 baseline JPEG frame took 504 MB more at its peak, 10.3 bytes per pixel.
 */
export const DICOM_BYTES_PER_PIXEL = 16;

/** Bytes per sample of sharp's sample formats (`metadata().depth`). */
const SAMPLE_BYTES: Readonly<Record<string, number>> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 };

/**
 * Bytes a raster image's decode to grey holds, from its header: every decoded sample at once (an
 * interlaced PNG or a progressive JPEG cannot be decoded a strip at a time: a 7000×7000 one took 188
 * and 202 MB, where a plain one took 60), and the grey levels, at 16 bits first for a 16-bit image.
 */
export function rasterDecodeBytes(width: number, height: number, channels: number, depth: string | undefined): number {
  const sampleBytes = SAMPLE_BYTES[depth ?? 'uchar'] ?? 8;
  const greyBytes = sampleBytes > 1 ? sampleBytes + 1 : 1;
  return width * height * (channels * sampleBytes + greyBytes);
}

/** Bytes one DICOM frame's decode holds: frames decode one after the other, so one frame's worth. */
export function dicomDecodeBytes(width: number, height: number): number {
  return width * height * DICOM_BYTES_PER_PIXEL;
}

/** What a decode may hold at most, in the limits a header is checked against: the whole of `memory`, when there is one. */
export function decodeLimitOf(memory: DecodeMemoryBudget | undefined): { maxDecodeBytes?: number } {
  return memory ? { maxDecodeBytes: memory.limitBytes } : {};
}

/**
 * Waits until a read may hold `bytes` (a deflated DICOM file's inflation, a decode), in place of what it
 * held before: the memory taken is given back by whoever asked, when the read ends.
 */
export type DecodeAdmission = (bytes: number) => Promise<void>;

/** Runs a decode of `bytes` within `memory`, when there is one (else at once); not at all when `signal` aborts while it waits. */
export async function decodeWithin<T>(memory: DecodeMemoryBudget | undefined, bytes: number, decode: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return memory ? memory.run(bytes, decode, signal) : decode();
}
