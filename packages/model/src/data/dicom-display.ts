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

/** An uncompressed 8-bit RGB image (a secondary capture, say) to grey, as sharp greys an RGB JPEG or PNG. */
export async function rgbToGrey(
  data: DataSet,
  pixels: Uint8Array,
  width: number,
  height: number,
  bitsAllocated: number,
  photometric: string,
  options: { interleaved?: boolean } = {},
): Promise<GreyImage> {
  if (bitsAllocated !== 8 || photometric !== 'RGB') throw unsupportedImage(`DICOM colour image (${photometric}, ${bitsAllocated} bits) is not read; 8-bit RGB is`);
  let interleaved = pixels;
  if (!options.interleaved && data.uint16(TAG.planarConfiguration) === 1) {
    // Planes R…R G…G B…B into R G B triples.
    const plane = width * height;
    interleaved = new Uint8Array(3 * plane);
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) interleaved[3 * i + c] = pixels[c * plane + i] as number;
  }
  const grey = await sharp(interleaved, { raw: { width, height, channels: 3 } }).toColourspace('b-w').raw().toBuffer();
  return { width, height, data: new Uint8Array(grey) };
}
