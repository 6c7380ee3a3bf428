import { describeBlank, ImageDecodeError, MIN_IMAGE_SIDE } from '@btd/model';
import { fileTypeFromBuffer } from 'file-type';
import { ApiError } from '../errors/api-error.js';
import { inlineDicomReader, type DicomReading } from './dicom-reader.js';
import type { BlankFrame } from './dicom-reading.js';
import { inputFormats, UnreadableHeader, type ImageHeader, type InputFormat, type IntakeChecks } from './input-formats.js';

/** Every check on the calling thread (for callers without the API's thread pool, such as tests). */
const INLINE_CHECKS: IntakeChecks = { dicom: inlineDicomReader() };

/** Limits every uploaded image must satisfy. */
export interface UploadLimits {
  /** Largest accepted file, in bytes. */
  readonly maxBytes: number;
  /** Largest accepted width × height, against decompression bombs. */
  readonly maxPixels: number;
  /** Most images one file may hold (the frames of a multi-frame DICOM file), checked before any is decoded. */
  readonly maxImages: number;
}

/** An uploaded file that passed every check and may be stored. */
export interface AcceptedImage {
  readonly filename: string;
  readonly bytes: Uint8Array;
  readonly format: InputFormat;
  readonly header: ImageHeader;
  /** The frames (0-based) of a multi-frame DICOM file that are blank, with their grey level, which are not analysed; absent when none is. */
  readonly blankFrames?: readonly BlankFrame[];
}

/** How many images an accepted file becomes: one per frame, but for its blank frames. */
export function imagesIn(accepted: AcceptedImage): number {
  return accepted.header.frames - (accepted.blankFrames?.length ?? 0);
}

const formatList = new Intl.ListFormat('en-GB', { type: 'disjunction' }).format(inputFormats.map((format) => format.label));

function reject(statusCode: number, code: string, filename: string, message: string): ApiError {
  return new ApiError(statusCode, code, `${JSON.stringify(filename)}: ${message}`, { file: filename });
}

async function detectFormat(bytes: Uint8Array, filename: string): Promise<InputFormat> {
  // The extension is ignored on purpose: real archives hold PNG data in files named `.jpg`.
  const detected = await fileTypeFromBuffer(bytes);
  const format = inputFormats.find((candidate) => candidate.matches(detected?.mime));
  if (format) return format;
  const seen = detected ? `${detected.mime} content` : 'content of no recognised image type';
  return Promise.reject(reject(415, 'unsupported_type', filename, `is ${seen}; accepted: ${formatList}`));
}

/** The decoder's reason, first line only: libvips appends the messages of other images decoding meanwhile. */
function describeFailure(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (text.split('\n')[0] ?? '').replace(/^vips\w*:\s*/i, '').trim();
}

/** The refusal of pixel data that does not decode: unsupported, truncated or undecodable, with the decoder's reason. */
function decodeRefusal(error: Error, format: InputFormat, bytes: Uint8Array, filename: string): ApiError {
  if (error instanceof ImageDecodeError && error.unsupported) return reject(422, 'image_unsupported', filename, error.message);
  const reason = describeFailure(error);
  // The file's own end marker decides first: libvips can lose its message while other images decode, and
  // libpng says "read error" of a PNG cut short and of one whose data is corrupt alike.
  const endsEarly = format.endsEarly?.(bytes) === true;
  const code = endsEarly || /premature end|truncat|unexpected end/i.test(reason) ? 'image_truncated' : 'image_undecodable';
  const what = code === 'image_truncated' ? 'is truncated' : 'cannot be decoded';
  const because = endsEarly && /^unknown error$/i.test(reason) ? 'it stops before its end marker' : reason;
  return reject(422, code, filename, `${format.label} data ${what} (${because})`);
}

/** The refusal of a file whose every frame is blank: the models refuse such an image, so there is nothing to analyse. */
function blankRefusal(blank: readonly BlankFrame[], filename: string): ApiError {
  const levels = [...new Set(blank.map((frame) => frame.level))].join(', ');
  const uniform = blank.every((frame) => frame.uniform);
  const what =
    blank.length === 1
      ? describeBlank(blank[0]!)
      : `each of its ${blank.length} frames ${uniform ? 'has one grey level throughout' : 'is blank or nearly so, its background of grey level'} (${levels})`;
  return reject(422, 'image_blank', filename, `is blank: ${what}, so there is nothing to analyse`);
}

/**
 * Checks one uploaded file by content: not empty, within the byte limit, a supported format,
 * a header declaring at most `maxPixels`, at least `MIN_IMAGE_SIDE` across and down (and at most `maxImages`
 * frames), pixel data that decodes to the end, and not blank (as `blankImage` tells; of a multi-frame
 * DICOM file, not every frame blank: its blank frames are then left out of the analysis)
 * (a DICOM file is parsed and its frames decoded through `checks`, off the event loop in the API; `dicom`
 * is that reading when the caller already made it with these limits, so that the file is parsed once).
 * The accepted image's bytes are the file's from then on: those given may have been moved to a thread.
 *
 * @throws ApiError (4xx) naming the file and the precise reason
 */
export async function inspectUpload(
  bytes: Uint8Array,
  filename: string,
  limits: UploadLimits,
  checks: IntakeChecks = INLINE_CHECKS,
  dicom?: DicomReading,
): Promise<AcceptedImage> {
  if (bytes.length === 0) throw reject(400, 'empty_file', filename, 'is empty');
  if (bytes.length > limits.maxBytes) {
    throw reject(413, 'file_too_large', filename, `is ${bytes.length} bytes; the limit is ${limits.maxBytes}`);
  }
  const format = await detectFormat(bytes, filename);
  const inspection = await format.inspect(bytes, limits, checks, dicom).catch((error: unknown) => {
    if (!(error instanceof UnreadableHeader)) throw error;
    throw reject(422, 'image_unreadable', filename, `${format.label} header cannot be read (${describeFailure(error.cause)})`);
  });
  const { header } = inspection;
  const pixels = header.width * header.height;
  if (pixels > limits.maxPixels) {
    const declared = `${header.width}×${header.height} = ${pixels} pixels`;
    throw reject(422, 'image_too_large', filename, `declares ${declared}; the limit is ${limits.maxPixels}`);
  }
  if (header.frames > limits.maxImages) {
    throw reject(413, 'too_many_images', filename, `holds ${header.frames} frames, each an image; at most ${limits.maxImages} per study`);
  }
  // Its decode alone would hold more than all decodes may at once: it was not decoded, and never could be.
  const memory = checks.decodeMemory;
  if (memory && !memory.fits(header.decodeBytes)) {
    const decoded = `${Math.ceil(header.decodeBytes / 2 ** 20)} MiB${header.frames > 1 ? ' a frame' : ''}`;
    const declared = `${header.width}×${header.height} pixels`;
    throw reject(422, 'image_too_large', filename, `declares ${declared}, which decode to about ${decoded}; decodes may hold ${memory.limitBytes} bytes at once (MAX_INFLIGHT_DECODE_BYTES)`);
  }
  if (inspection.decodeFailure) throw decodeRefusal(inspection.decodeFailure, format, inspection.bytes, filename);
  // The models refuse such an image; its header tells so before anything is stored or queued.
  if (Math.min(header.width, header.height) < MIN_IMAGE_SIDE) {
    const size = `${header.width}×${header.height} pixels`;
    throw reject(422, 'image_too_small', filename, `is ${size}, too small to analyse: send images at least ${MIN_IMAGE_SIDE} pixels wide and high`);
  }
  // Blank too: a series may hold blank padding frames, which are left out so that the rest are analysed.
  const blank = inspection.blankFrames ?? [];
  if (blank.length === header.frames) throw blankRefusal(blank, filename);
  return { filename, bytes: inspection.bytes, format, header, ...(blank.length > 0 ? { blankFrames: blank } : {}) };
}
