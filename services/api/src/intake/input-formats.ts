import { readDicomHeader, type DicomIdentifiers, type SlicePlane } from '@btd/model';
import sharp from 'sharp';
import type { DicomFramesCheck } from './dicom-frames-check.js';

/** How intake proves pixel data whole, where a format needs more than its own decoder on the event loop. */
export interface IntakeChecks {
  readonly dicomFrames: DicomFramesCheck;
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
  readonly dicom?: DicomImageInfo;
}

/**
 * One accepted upload format. Intake checks every file against these before anything is stored.
 *
 * Each format implements the same three steps: recognise its magic bytes, read its header
 * (dimensions first) without decoding pixels, and prove the pixel data decodes.
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
  /** Header-only read: cheap even for a decompression bomb. */
  readHeader(bytes: Uint8Array): Promise<ImageHeader>;
  /** Decodes every pixel (never more than `maxPixels`); throws when the data is truncated or corrupt. */
  verifyDecodable(bytes: Uint8Array, maxPixels: number, checks: IntakeChecks): Promise<void>;
  /** True when the file visibly stops before its image ends (no end marker), whatever the decoder said. */
  endsEarly?(bytes: Uint8Array): boolean;
}

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

function rasterFormat(mime: string, label: string, extension: string, endsEarly: (bytes: Uint8Array) => boolean): InputFormat {
  return {
    mime,
    label,
    extension,
    endsEarly,
    matches: (detectedMime) => detectedMime === mime,
    async readHeader(bytes) {
      // The pixel limit is checked by the caller with a precise message; sharp's own would
      // refuse to read the header at all.
      const metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
      if (!metadata.width || !metadata.height) throw new Error('header has no dimensions');
      return { width: metadata.width, height: metadata.height, frames: 1 };
    },
    async verifyDecodable(bytes, maxPixels) {
      // Shrinking to a thumbnail still reads the whole stream, which is what proves it complete.
      const decode = () => sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels }).resize(8, 8).raw().toBuffer();
      // While other images decode, libvips can lose a failure's message ("Unknown error"); a second
      // decode says what is wrong (truncated or corrupt), which the refusal names.
      await decode().catch(async (error: unknown) => {
        if (!(error instanceof Error && /^unknown error$/i.test(error.message.trim()))) throw error;
        await decode();
      });
    },
  };
}

/**
 * DICOM Part 10 files holding one slice, uncompressed or in a compressed encoding the model package
 * reads; decoding applies the file's rescale and window, as the workers will (`decodeDicomGrey`).
 */
const dicomFormat: InputFormat = {
  mime: 'application/dicom',
  label: 'DICOM',
  extension: 'dcm',
  matches: (detectedMime) => detectedMime === 'application/dicom',
  async readHeader(bytes) {
    const { width, height, frames, identifiers, plane } = readDicomHeader(bytes);
    if (!Number.isInteger(frames) || frames < 1) throw new Error(`Number of Frames is ${frames}`);
    return { width, height, frames, dicom: { ...identifiers, ...(plane ? { plane } : {}) } };
  },
  async verifyDecodable(bytes, maxPixels, checks) {
    // Every frame: each becomes an image, and each must be there and decode.
    await checks.dicomFrames.verify(bytes, maxPixels);
  },
};

/** Formats accepted by `POST /v1/studies`, in the order they are tried. */
export const inputFormats: readonly InputFormat[] = [
  rasterFormat('image/jpeg', 'JPEG', 'jpg', jpegEndsEarly),
  rasterFormat('image/png', 'PNG', 'png', pngEndsEarly),
  dicomFormat,
];
