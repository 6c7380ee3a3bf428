import type { DataSet } from 'dicom-parser';
import sharp from 'sharp';
import type { GreyImage } from './decode-image.js';
import { stretchToBytes } from './grey-levels.js';
import { unsupportedImage } from './image-decode-error.js';

const TAG = {
  planarConfiguration: 'x00280006',
  bitsStored: 'x00280101',
  pixelRepresentation: 'x00280103',
  windowCenter: 'x00281050',
  windowWidth: 'x00281051',
  rescaleIntercept: 'x00281052',
  rescaleSlope: 'x00281053',
  sharedGroups: 'x52009229',
  perFrameGroups: 'x52009230',
  frameVoiLut: 'x00289132',
  pixelValueTransformation: 'x00289145',
  planeOrientation: 'x00209116',
} as const;

/** The functional group holding a frame's Image Orientation (Patient) in an enhanced image. */
export const PLANE_ORIENTATION_GROUP = TAG.planeOrientation;

/**
 * The data set that holds a frame's attributes of one functional group: the frame's own item of the
 * Per-frame Functional Groups Sequence, else the Shared Functional Groups Sequence, else (a classic
 * image, whose attributes are top-level) the file itself.
 */
export function frameGroup(data: DataSet, frame: number, group: string): DataSet {
  const inItem = (sequence: string, index: number) => data.elements[sequence]?.items?.[index]?.dataSet?.elements[group]?.items?.[0]?.dataSet;
  return inItem(TAG.perFrameGroups, frame) ?? inItem(TAG.sharedGroups, 0) ?? data;
}

/** How a frame's stored values become display levels: its rescale, then its first VOI window, if any. */
export interface DisplayParameters {
  slope: number;
  intercept: number;
  window?: { center: number; width: number };
}

/** A frame's display parameters, from its functional groups or the file's top-level attributes. */
export function displayParameters(data: DataSet, frame: number): DisplayParameters {
  const transform = frameGroup(data, frame, TAG.pixelValueTransformation);
  const voi = frameGroup(data, frame, TAG.frameVoiLut);
  const center = voi.floatString(TAG.windowCenter);
  const width = voi.floatString(TAG.windowWidth);
  return {
    slope: transform.floatString(TAG.rescaleSlope) ?? 1,
    intercept: transform.floatString(TAG.rescaleIntercept) ?? 0,
    ...(center !== undefined && width !== undefined && width >= 1 ? { window: { center, width } } : {}),
  };
}

/**
 * The stored values of a grey image, unsigned or two's complement, masked to BitsStored. Values a
 * lossy codec decoded above BitsStored's range (JPEG 2000 overshoots at sharp edges) are clamped to its
 * highest value, as masking would wrap them to dark.
 */
export function storedValues(data: DataSet, pixels: Uint8Array, count: number, bitsAllocated: 8 | 16, options: { littleEndian: boolean; decompressed: boolean }): Float64Array {
  const bitsStored = Math.min(data.uint16(TAG.bitsStored) ?? bitsAllocated, bitsAllocated);
  const signed = data.uint16(TAG.pixelRepresentation) === 1;
  const mask = 2 ** bitsStored - 1;
  const signBit = 2 ** (bitsStored - 1);
  const clamp = options.decompressed && !signed;
  const view = new DataView(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const word = bitsAllocated === 8 ? view.getUint8(i) : view.getUint16(2 * i, options.littleEndian);
    const raw = clamp ? Math.min(word, mask) : word & mask;
    values[i] = signed && raw >= signBit ? raw - 2 * signBit : raw;
  }
  return values;
}

/** Modality rescale, then the VOI window or the full range, to 0–255; MONOCHROME1 inverted. */
export function toDisplay(values: Float64Array, width: number, height: number, photometric: string, display: DisplayParameters): GreyImage {
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2') {
    throw unsupportedImage(`DICOM photometric interpretation ${photometric} with one sample is not read`);
  }
  const { slope, intercept, window } = display;
  for (let i = 0; i < values.length; i++) values[i] = (values[i] as number) * slope + intercept;
  const out = window ? applyWindow(values, window.center, window.width) : stretchToBytes(values);
  if (photometric === 'MONOCHROME1') for (let i = 0; i < out.length; i++) out[i] = 255 - (out[i] as number);
  return { width, height, data: out };
}

/** The linear VOI window of DICOM PS3.3 C.11.2.1.2.1, onto 0–255. */
function applyWindow(values: Float64Array, center: number, width: number): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const level = (((values[i] as number) - (center - 0.5)) / (width - 1) + 0.5) * 255;
    out[i] = Math.round(Math.min(255, Math.max(0, level)));
  }
  return out;
}

/** Colour photometric interpretations read: RGB, and the YCbCr of JPEG-compressed colour (PS3.3 C.7.6.3.1.2). */
const COLOUR_INTERPRETATIONS = new Set(['RGB', 'YBR_FULL', 'YBR_FULL_422']);

/** How a colour frame's samples lie: as stored (planar or not, chroma subsampled or not, either byte order), or as a decoder gives them. */
export interface ColourFrame {
  width: number;
  height: number;
  bitsAllocated: 8 | 16;
  photometric: string;
  /** Decompressed: interleaved, every pixel its own chroma, little endian, whatever the header says of planes and subsampling. */
  decompressed: boolean;
  littleEndian: boolean;
}

/**
 * Samples a stored colour frame holds per pixel: 3, but 2 for uncompressed YBR_FULL_422, whose pixels
 * come in pairs along a row (Y1 Y2 Cb Cr), the two sharing their chroma.
 *
 * @throws ImageDecodeError (unsupported) for a YBR_FULL_422 frame of an odd number of columns
 */
export function storedSamplesPerPixel(photometric: string, samples: number, width: number): number {
  if (samples !== 3 || photometric !== 'YBR_FULL_422') return samples;
  if (width % 2 !== 0) throw unsupportedImage(`DICOM YBR_FULL_422 image of ${width} columns is not read; its pixels come in pairs along a row`);
  return 2;
}

/**
 * A colour image (a secondary capture, an ultrasound frame, a JPEG-compressed export) to grey, as sharp
 * greys an RGB PNG of the same samples: YCbCr (YBR_FULL, YBR_FULL_422) is first converted to RGB by the
 * standard's equations; 8-bit samples are greyed as an 8-bit PNG is; samples of more than 8 bits as a
 * 16-bit PNG is, then stretched from their lowest to their highest grey, as a grey image without a window is.
 */
export async function colourToGrey(data: DataSet, pixels: Uint8Array, frame: ColourFrame): Promise<GreyImage> {
  const { width, height, bitsAllocated, photometric } = frame;
  if (!COLOUR_INTERPRETATIONS.has(photometric)) throw unsupportedImage(`DICOM colour image (${photometric}, ${bitsAllocated} bits) is not read; RGB, YBR_FULL or YBR_FULL_422 is`);
  const bitsStored = Math.min(data.uint16(TAG.bitsStored) ?? bitsAllocated, bitsAllocated);
  const rgb = interleavedSamples(data, pixels, frame, bitsStored);
  if (photometric !== 'RGB') ybrFullToRgb(rgb, bitsStored);
  if (bitsAllocated === 8) {
    const grey = await sharp(Uint8Array.from(rgb), { raw: { width, height, channels: 3 } }).toColourspace('b-w').raw().toBuffer();
    return { width, height, data: new Uint8Array(grey) };
  }
  const grey = await sharp(rgb, { raw: { width, height, channels: 3 } }).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer();
  const aligned = grey.byteOffset % 2 === 0 ? grey : Buffer.from(grey);
  return { width, height, data: stretchToBytes(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2)) };
}

/** A colour frame's samples R G B (or Y Cb Cr) per pixel, each pixel its own chroma, masked to BitsStored. */
function interleavedSamples(data: DataSet, pixels: Uint8Array, frame: ColourFrame, bitsStored: number): Uint16Array {
  const { width, height, bitsAllocated, decompressed } = frame;
  const count = width * height;
  const view = new DataView(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  const mask = 2 ** bitsStored - 1;
  const littleEndian = decompressed || frame.littleEndian;
  const word = (i: number) => (bitsAllocated === 8 ? view.getUint8(i) : view.getUint16(2 * i, littleEndian));
  // A lossy codec may overshoot BitsStored's range: clamp what it decoded, as masking would wrap it to dark.
  const read = decompressed ? (i: number) => Math.min(word(i), mask) : (i: number) => word(i) & mask;
  const out = new Uint16Array(3 * count);
  if (!decompressed && frame.photometric === 'YBR_FULL_422') {
    for (let pair = 0; 2 * pair < count; pair++) {
      const [y1, y2, cb, cr] = [0, 1, 2, 3].map((k) => read(4 * pair + k)) as [number, number, number, number];
      out.set([y1, cb, cr, y2, cb, cr], 6 * pair);
    }
  } else if (!decompressed && data.uint16(TAG.planarConfiguration) === 1) {
    // Planes R…R G…G B…B into R G B triples.
    for (let i = 0; i < count; i++) for (let c = 0; c < 3; c++) out[3 * i + c] = read(c * count + i);
  } else {
    for (let i = 0; i < out.length; i++) out[i] = read(i);
  }
  return out;
}

/**
 * YBR_FULL to RGB in place, inverting PS3.3 C.7.6.3.1.2 (Y = .299R + .587G + .114B, Cb and Cr centred
 * on half the range), rounded and clipped to BitsStored's range.
 */
export function ybrFullToRgb(samples: Uint16Array, bitsStored: number): void {
  const max = 2 ** bitsStored - 1;
  const half = 2 ** (bitsStored - 1);
  const level = (v: number) => Math.min(max, Math.max(0, Math.round(v)));
  for (let i = 0; i + 2 < samples.length; i += 3) {
    const y = samples[i] as number;
    const cb = (samples[i + 1] as number) - half;
    const cr = (samples[i + 2] as number) - half;
    samples[i] = level(y + 1.402 * cr);
    samples[i + 1] = level(y - 0.344136 * cb - 0.714136 * cr);
    samples[i + 2] = level(y + 1.772 * cb);
  }
}
