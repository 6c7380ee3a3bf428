import { blankImage, decodeRasterGrey, ImageDecodeError, type DicomIdentifiers, type SlicePlane } from '@btd/model';
import sharp from 'sharp';
import type { DecodeMemoryBudget } from '../uploads/decode-memory-budget.js';
import { decodeLimitOf, decodeWithin, rasterDecodeBytes } from './decode-memory.js';
import type { DicomReader, DicomReading } from './dicom-reader.js';
import { dicomImageHeader, withinLimits, type BlankFrame, type DecodeLimits } from './dicom-reading.js';

/** How intake reads what it should not read on the event loop. */
export interface IntakeChecks {
  /** DICOM files: parsed (a deflated one inflated) and their frames decoded, on the intake threads in the API. */
  readonly dicom: DicomReader;
  /** The memory that decodes share (MAX_INFLIGHT_DECODE_BYTES): each waits for its header's decodeBytes; no bound when absent. */
  readonly decodeMemory?: DecodeMemoryBudget;
  /** Aborted once the request has gone (its client closed the connection): its decodes still waiting for memory then leave the queue, never run. */
  readonly signal?: AbortSignal;
}

/**
 * For a DICOM image: the identifiers a PACS knows it by, the plane of the slice and, for one frame of a
 * multi-frame original, which (1-based, as DICOM numbers frames) of how many.
 */
export type DicomImageInfo = DicomIdentifiers & { plane?: SlicePlane; frameNumber?: number; numberOfFrames?: number };

/** What an image header says: its pixel dimensions, its frames (DICOM) and, for DICOM, what the header tells of the slice. */
export interface ImageHeader {
  readonly width: number;
  readonly height: number;
  /** Images in the file: 1 but for a multi-frame DICOM image, whose every frame is analysed as an image. */
  readonly frames: number;
  /** Bytes that decoding it holds at once, from the header (a DICOM file's frames decode one at a time). */
  readonly decodeBytes: number;
  readonly dicom?: DicomImageInfo;
}

/** A header that cannot be read; `cause` says why. */
export class UnreadableHeader extends Error {
  constructor(cause: unknown) {
    super('header cannot be read', { cause });
    this.name = 'UnreadableHeader';
  }
}

/** What a format's inspection of a file found. */
export interface FormatInspection {
  /** The file's bytes from then on (a DICOM file's come back from the thread that read it). */
  readonly bytes: Uint8Array;
  readonly header: ImageHeader;
  /** Why the pixel data does not decode; absent when it decodes, or when the header is beyond the limits and nothing was decoded. */
  readonly decodeFailure?: Error;
  /** The frames that decoded blank (as the models see them: in grey), when every frame decoded. */
  readonly blankFrames?: readonly BlankFrame[];
}

/**
 * One accepted upload format. Intake checks every file against these before anything is stored.
 *
 * Each format recognises its magic bytes, reads its header (dimensions first) without decoding
 * pixels, and, when the header is within the limits, proves the pixel data decodes.
 */
export interface InputFormat {
  /** MIME type stored with the original and reported to clients. */
  readonly mime: string;
  /** Human name used in rejection messages. */
  readonly label: string;
  /** File extension of the stored original. */
  readonly extension: string;
  /** True when the content sniffed by `file-type` is this format. */
  matches(detectedMime: string | undefined): boolean;
  /**
   * Reads the header (cheap even for a decompression bomb) then, if it is within `limits`, decodes
   * every pixel (never more than `limits.maxPixels`) to the grey levels the models take, and tells the
   * blank frames. `reading` is the file's DICOM reading when the caller already made it with the same limits.
   *
   * @throws UnreadableHeader when the header cannot be read
   */
  inspect(bytes: Uint8Array, limits: DecodeLimits, checks: IntakeChecks, reading?: DicomReading): Promise<FormatInspection>;
  /** True when the file visibly stops before its image ends (no end marker), whatever the decoder said. */
  endsEarly?(bytes: Uint8Array): boolean;
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** A JPEG ends early when no end-of-image marker follows its last scan (an EXIF thumbnail has its own, earlier). */
function jpegEndsEarly(bytes: Uint8Array): boolean {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buffer.lastIndexOf(JPEG_EOI) < buffer.lastIndexOf(JPEG_SOS);
}
const JPEG_SOS = Buffer.from([0xff, 0xda]);
const JPEG_EOI = Buffer.from([0xff, 0xd9]);

/** A PNG ends early without its IEND chunk. */
function pngEndsEarly(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).lastIndexOf('IEND', undefined, 'latin1') < 0;
}

async function rasterHeader(bytes: Uint8Array): Promise<ImageHeader> {
  const metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  if (!metadata.width || !metadata.height) throw new Error('header has no dimensions');
  const { width, height } = metadata;
  return { width, height, frames: 1, decodeBytes: rasterDecodeBytes(width, height, metadata.channels ?? 4, metadata.depth) };
}

function rasterFormat(mime: string, label: string, extension: string, endsEarly: (bytes: Uint8Array) => boolean): InputFormat {
  return {
    mime,
    label,
    extension,
    endsEarly,
    matches: (detectedMime) => detectedMime === mime,
    async inspect(bytes, limits, checks) {
      // The pixel limit is checked by the caller with a precise message; sharp's own would
      // refuse to read the header at all.
      const header = await rasterHeader(bytes).catch((error: unknown) => {
        throw new UnreadableHeader(error);
      });
      if (!withinLimits(header, { ...limits, ...decodeLimitOf(checks.decodeMemory) })) return { bytes, header };
      // Decoded whole to the models' grey levels, as strictly as the workers read it: proves the stream
      // complete and sound, and shows a blank image as the models would see it (a colour image through
      // its grey levels, transparency black).
      const decode = async () => decodeRasterGrey(bytes, limits.maxPixels);
      // While other images decode, libvips can lose a failure's message ("Unknown error"); a second
      // decode says what is wrong (truncated or corrupt), which the refusal names.
      // Within the memory that decodes share: waits, if need be, for others to end.
      const decoded = await decodeWithin(checks.decodeMemory, header.decodeBytes, async () =>
        decode()
          .catch(async (error: unknown) => {
            if (!(error instanceof Error && /^unknown error$/i.test(error.message.trim()))) throw error;
            return decode();
          })
          .then((grey) => ({ blank: blankImage(grey) }), (error: unknown) => ({ failure: asError(error) })),
        checks.signal,
      );
      if ('failure' in decoded) return { bytes, header, decodeFailure: decoded.failure };
      return { bytes, header, ...(decoded.blank ? { blankFrames: [{ frame: 0, ...decoded.blank }] } : {}) };
    },
  };
}

/**
 * DICOM Part 10 files holding one slice or a series of frames, uncompressed or in a compressed encoding
 * the model package reads; decoding applies the file's rescale and window, as the workers will (`decodeDicomGrey`).
 */
const dicomFormat: InputFormat = {
  mime: 'application/dicom',
  label: 'DICOM',
  extension: 'dcm',
  matches: (detectedMime) => detectedMime === 'application/dicom',
  async inspect(bytes, limits, checks, reading) {
    // Parsed once, with every frame decoded when the header is within the limits, off the event loop.
    const read = reading ?? (await checks.dicom.read(bytes, limits, checks.signal));
    if (read.headerError !== undefined || !read.header) throw new UnreadableHeader(new Error(read.headerError));
    let header: ImageHeader;
    try {
      header = dicomImageHeader(read.header);
    } catch (error) {
      throw new UnreadableHeader(error);
    }
    const failure = read.decodeFailure;
    if (!failure) return { bytes: read.bytes, header, ...(read.blankFrames ? { blankFrames: read.blankFrames } : {}) };
    const decodeFailure = failure.decode ? new ImageDecodeError(failure.message, { unsupported: failure.unsupported }) : new Error(failure.message);
    return { bytes: read.bytes, header, decodeFailure };
  },
};

/** Formats accepted by `POST /v1/studies`, in the order they are tried. */
export const inputFormats: readonly InputFormat[] = [
  rasterFormat('image/jpeg', 'JPEG', 'jpg', jpegEndsEarly),
  rasterFormat('image/png', 'PNG', 'png', pngEndsEarly),
  dicomFormat,
];
