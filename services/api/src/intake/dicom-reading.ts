import { blankImage, ImageDecodeError, inflationBytes, parseDicomFile, type BlankImage, type DicomHeader } from '@btd/model';
import { dicomDecodeBytes, type DecodeAdmission } from './decode-memory.js';
import type { ImageHeader } from './input-formats.js';

/** What a file's header may declare for its pixel data to be decoded at all (else it is refused from the header). */
export interface DecodeLimits {
  /** Largest width × height. */
  readonly maxPixels: number;
  /** Most images (frames) in one file. */
  readonly maxImages: number;
  /** Most bytes one decode may hold (MAX_INFLIGHT_DECODE_BYTES, all that decodes may hold at once); no bound when absent. */
  readonly maxDecodeBytes?: number;
}

/** Whether a header is within the limits; one that is not is refused before any pixel is decoded. */
export function withinLimits(header: Pick<ImageHeader, 'width' | 'height' | 'frames' | 'decodeBytes'>, limits: DecodeLimits): boolean {
  return header.width * header.height <= limits.maxPixels && header.frames <= limits.maxImages && header.decodeBytes <= (limits.maxDecodeBytes ?? Infinity);
}

/** The image header of a DICOM header, whose Number of Frames must make at least one image. */
export function dicomImageHeader({ width, height, frames, identifiers, plane }: DicomHeader): ImageHeader {
  if (!Number.isInteger(frames) || frames < 1) throw new Error(`Number of Frames is ${frames}`);
  return { width, height, frames, decodeBytes: dicomDecodeBytes(width, height), dicom: { ...identifiers, ...(plane ? { plane } : {}) } };
}

/** Why pixel data did not decode; an error's class and flags do not cross threads, so they travel as fields. */
export interface DecodeFailure {
  readonly message: string;
  /** Thrown as an ImageDecodeError (else another error, such as a codec's). */
  readonly decode: boolean;
  readonly unsupported: boolean;
}

/** A decoded frame (0-based; a raster image's is 0) that is blank or nearly so (`blankImage`), which the models refuse. */
export interface BlankFrame extends Readonly<BlankImage> {
  readonly frame: number;
}

/** What one read of a DICOM file found; plain data, so that it crosses threads. */
export interface DicomFindings {
  /** The header, when it reads (kept when its frames make no image: STOW-RS answers with its UIDs). */
  readonly header?: DicomHeader;
  /** Why the header cannot be read, or makes no image; the file is then unreadable. */
  readonly headerError?: string;
  /** Why a frame did not decode, when the header was within the limits and its frames were decoded. */
  readonly decodeFailure?: DecodeFailure;
  /** The frames that decoded blank, when every frame decoded. */
  readonly blankFrames?: readonly BlankFrame[];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reads a DICOM file, parsed once: its header and, with `limits` that the header is within, every
 * frame decoded (each becomes an image, and each must be there and decode) and those that are blank.
 * Without `limits`, the header only. Runs on an intake thread, or on the calling one.
 *
 * What the read holds is let in by `admit` (whoever gives it gives it back when the read ends): a
 * deflated file's inflation first, at its bound, before the file is parsed; then its frames' decode,
 * of the header's size and the inflated data set the frames are read from. When the decode needs more
 * than the inflation was let in with, the parse is dropped before the read waits for the larger amount
 * (`admit` holds one amount at a time, never waiting with another held) and made again once it is in.
 */
export async function readDicom(bytes: Uint8Array, limits: DecodeLimits | undefined, admit?: DecodeAdmission): Promise<DicomFindings> {
  const inflation = admit ? inflationBytes(bytes) : 0;
  if (inflation > 0) await admit?.(inflation);
  let parsed: ReturnType<typeof parseDicomFile> | undefined;
  try {
    parsed = parseDicomFile(bytes);
  } catch (error) {
    return { headerError: messageOf(error) };
  }
  const { header } = parsed;
  let image: ImageHeader;
  try {
    image = dicomImageHeader(header);
  } catch (error) {
    return { header, headerError: messageOf(error) };
  }
  if (!limits || !withinLimits(image, limits)) return { header };
  const decodeBytes = Math.min(image.decodeBytes + parsed.inflatedBytes, limits.maxDecodeBytes ?? Infinity);
  if (decodeBytes > inflation && parsed.inflatedBytes > 0) parsed = undefined;
  await admit?.(decodeBytes);
  const blankFrames: BlankFrame[] = [];
  try {
    const dicom = (parsed ?? parseDicomFile(bytes)).image(limits.maxPixels);
    for (let frame = 0; frame < image.frames; frame++) {
      const blank = blankImage(await dicom.decodeFrame(frame));
      if (blank) blankFrames.push({ frame, ...blank });
    }
  } catch (error) {
    const decode = error instanceof ImageDecodeError;
    return { header, decodeFailure: { message: messageOf(error), decode, unsupported: decode && error.unsupported } };
  }
  return { header, ...(blankFrames.length > 0 ? { blankFrames } : {}) };
}
