import { inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import { ImageDecodeError } from './image-decode-error.js';

/**
 * Most bytes the data set of a deflated DICOM file (transfer syntax 1.2.840.10008.1.2.1.99) may
 * inflate to: 64 MiB, twice a series of 64 slices of 512×512 16-bit pixels. Deflate packs up to about
 * a thousand bytes into one, so without a bound a 4 MB upload would inflate to 4 GB.
 */
export const MAX_INFLATED_DICOM_BYTES = 64 * 1024 * 1024;

const DEFLATED = '1.2.840.10008.1.2.1.99';

/**
 * dicom-parser's `inflater`: the file's bytes with its deflated data set (from `position`) inflated in
 * place, refused past {@link MAX_INFLATED_DICOM_BYTES} before more than that is held. The parser's own
 * inflater has no bound. Inflated into one buffer of the bound (its pages are taken as they are
 * written), not into 16 kB pieces joined at the end: the pieces and their join held three times the
 * data set at once, this holds twice (the inflated data set and the file's copy).
 */
export function inflateDataSet(bytes: Uint8Array, position: number): Buffer {
  const deflated = Buffer.from(bytes.buffer, bytes.byteOffset + position, bytes.byteLength - position);
  let inflated: Buffer;
  try {
    inflated = inflateRawSync(deflated, { maxOutputLength: MAX_INFLATED_DICOM_BYTES, chunkSize: MAX_INFLATED_DICOM_BYTES + 1 });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ImageDecodeError(`its deflated data set inflates to more than ${MAX_INFLATED_DICOM_BYTES / 2 ** 20} MiB; send it uncompressed`);
    }
    throw new ImageDecodeError(`its deflated data set cannot be inflated (${(error as Error).message})`);
  }
  const whole = Buffer.allocUnsafe(position + inflated.length);
  whole.set(bytes.subarray(0, position));
  whole.set(inflated, position);
  return whole;
}

/**
 * Bytes that parsing a DICOM file holds, at most, to inflate its data set, read from its file meta
 * group alone: for a deflated file, the file's copy and the inflated data set at their bound; 0 for any
 * other file (whose data set is read where it lies), or one whose meta group does not read.
 */
export function inflationBytes(bytes: Uint8Array): number {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let meta: ReturnType<typeof dicomParser.readPart10Header>;
  try {
    meta = dicomParser.readPart10Header(buffer);
  } catch {
    return 0;
  }
  if (meta.string('x00020010')?.replace(/\0+$/, '').trim() !== DEFLATED) return 0;
  return ((meta as { position?: number }).position ?? 0) + 2 * MAX_INFLATED_DICOM_BYTES;
}
