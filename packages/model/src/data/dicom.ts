import dicomParser, { type DataSet } from 'dicom-parser';
import sharp from 'sharp';
import { decompressFrame, isDecompressible } from './dicom-codecs.js';
import { stretchToBytes } from './grey-levels.js';
import { ImageDecodeError, unsupportedImage } from './image-decode-error.js';
import type { GreyImage } from './decode-image.js';

/** The identifiers a PACS knows the image by; each present only when the file carries it. */
export interface DicomIdentifiers {
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  accessionNumber?: string;
}

/** The plane of a slice in the patient's frame; oblique when it is more than about 37° off all three. */
export type SlicePlane = 'axial' | 'coronal' | 'sagittal' | 'oblique';

/** What a DICOM header says of its image, read without touching the pixel data. */
export interface DicomHeader {
  width: number;
  height: number;
  frames: number;
  /** Transfer syntax UID; implicit VR little endian when the file meta group names none. */
  transferSyntax: string;
  identifiers: DicomIdentifiers;
  /** SOP Class UID (MR Image Storage, say), when the file has it. */
  sopClassUid?: string;
  /** From Image Orientation (Patient), when the file has it. */
  plane?: SlicePlane;
}

const IMPLICIT_LITTLE = '1.2.840.10008.1.2';
const EXPLICIT_BIG = '1.2.840.10008.1.2.2';
/** Uncompressed pixel data; the deflated syntax compresses the data set, which the parser inflates. */
const UNCOMPRESSED = new Set([IMPLICIT_LITTLE, '1.2.840.10008.1.2.1', EXPLICIT_BIG, '1.2.840.10008.1.2.1.99']);
/** 8-bit JPEG, which sharp decodes. */
const JPEG_8BIT = new Set(['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51']);
/** Syntaxes that are refused, by name, so the sender knows what to change. */
const REFUSED_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2.4.100': 'MPEG2 video',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 video',
  '1.2.840.10008.1.2.4.201': 'HTJ2K lossless',
  '1.2.840.10008.1.2.4.203': 'HTJ2K',
};

const TAG = {
  transferSyntax: 'x00020010',
  samplesPerPixel: 'x00280002',
  photometric: 'x00280004',
  planarConfiguration: 'x00280006',
  frames: 'x00280008',
  rows: 'x00280010',
  columns: 'x00280011',
  bitsAllocated: 'x00280100',
  bitsStored: 'x00280101',
  pixelRepresentation: 'x00280103',
  windowCenter: 'x00281050',
  windowWidth: 'x00281051',
  rescaleIntercept: 'x00281052',
  rescaleSlope: 'x00281053',
  modality: 'x00080060',
  studyInstanceUid: 'x0020000d',
  seriesInstanceUid: 'x0020000e',
  sopInstanceUid: 'x00080018',
  sopClassUid: 'x00080016',
  accessionNumber: 'x00080050',
  orientation: 'x00200037',
  pixelData: 'x7fe00010',
} as const;

const IDENTIFIER_TAGS = ['studyInstanceUid', 'seriesInstanceUid', 'sopInstanceUid', 'accessionNumber'] as const;

/** Modalities analysed: MR, and OT (other), which secondary captures of MR images often carry. */
const ANALYSED_MODALITIES = new Set(['MR', 'OT']);

/** True for a DICOM Part 10 file: `DICM` after the 128-byte preamble. */
export function isDicom(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && String.fromCharCode(...bytes.subarray(128, 132)) === 'DICM';
}

function parse(bytes: Uint8Array, headerOnly: boolean): DataSet {
  try {
    return dicomParser.parseDicom(bytes, headerOnly ? { untilTag: TAG.pixelData } : undefined);
  } catch (error) {
    // dicom-parser throws strings, or objects holding one, as well as errors.
    const reason = typeof error === 'string' ? error : error instanceof Error ? error.message : String((error as { exception?: unknown }).exception ?? error);
    throw new ImageDecodeError(`DICOM cannot be parsed: ${reason.replace(/^dicomParser\.\w+:\s*/, '')}`);
  }
}

function headerOf(data: DataSet): DicomHeader {
  const width = data.uint16(TAG.columns);
  const height = data.uint16(TAG.rows);
  if (!width || !height) throw new ImageDecodeError('DICOM has no image: Rows or Columns missing');
  const frames = data.intString(TAG.frames) ?? 1;
  // UIDs are padded with NUL to an even length, other strings with a space.
  const text = (tag: string) => data.string(tag)?.replace(/\0+$/, '').trim() || undefined;
  const identifiers: DicomIdentifiers = {};
  for (const name of IDENTIFIER_TAGS) {
    const value = text(TAG[name]);
    if (value) identifiers[name] = value;
  }
  const sopClassUid = text(TAG.sopClassUid);
  const orientation = Array.from({ length: 6 }, (_, i) => data.floatString(TAG.orientation, i));
  const plane = orientation.every((v) => v !== undefined) ? slicePlane(orientation as number[]) : undefined;
  const transferSyntax = text(TAG.transferSyntax) ?? IMPLICIT_LITTLE;
  return { width, height, frames, transferSyntax, identifiers, ...(sopClassUid ? { sopClassUid } : {}), ...(plane ? { plane } : {}) };
}

/**
 * The plane of a slice from its row and column direction cosines (Image Orientation (Patient)): the
 * axis its normal runs along, x (left–right) for sagittal, y (front–back) for coronal, z (feet–head)
 * for axial, provided the normal's component along it is at least 0.8.
 */
export function slicePlane(orientation: readonly number[]): SlicePlane | undefined {
  const [rx = 0, ry = 0, rz = 0, cx = 0, cy = 0, cz = 0] = orientation;
  const normal = [ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx];
  const length = Math.hypot(...normal);
  if (!(length > 0)) return undefined;
  const along = normal.map((v) => Math.abs(v) / length);
  const axis = along.indexOf(Math.max(...along));
  if ((along[axis] as number) < 0.8) return 'oblique';
  return (['sagittal', 'coronal', 'axial'] as const)[axis];
}

/** Reads the image's size and encoding from a DICOM header; the pixel data is not read. */
export function readDicomHeader(bytes: Uint8Array): DicomHeader {
  return headerOf(parse(bytes, true));
}

/**
 * Decodes a single-frame DICOM image to 8-bit grey, as a viewer shows it: the modality rescale
 * (slope, intercept), then the first VOI window the file carries, or its lowest to highest value if it
 * carries none, and MONOCHROME1 inverted. Uncompressed (also deflated), 8-bit JPEG, and grey JPEG
 * lossless, JPEG-LS, JPEG 2000 and RLE encodings are read. Any other encoding, several frames, a modality other than MR (or OT), or pixel data shorter than the header
 * promises is refused with the reason.
 */
export async function decodeDicomGrey(bytes: Uint8Array, maxPixels: number): Promise<GreyImage> {
  const data = parse(bytes, false);
  const { width, height, frames, transferSyntax } = headerOf(data);
  if (width * height > maxPixels) throw new ImageDecodeError(`DICOM image has ${width}×${height} pixels; the limit is ${maxPixels}`);
  if (frames > 1) throw unsupportedImage(`DICOM holds ${frames} frames; send one slice per file`);
  const modality = data.string(TAG.modality)?.trim();
  if (modality && !ANALYSED_MODALITIES.has(modality)) throw unsupportedImage(`DICOM modality is ${modality}; btd analyses MR slices`);
  const element = data.elements[TAG.pixelData];
  if (!element) throw new ImageDecodeError('DICOM has no pixel data');
  const photometric = data.string(TAG.photometric)?.trim() || 'MONOCHROME2';
  const samples = data.uint16(TAG.samplesPerPixel) ?? 1;

  if (JPEG_8BIT.has(transferSyntax)) {
    const jpeg = dicomParser.readEncapsulatedPixelDataFromFragments(data, element, 0, element.fragments?.length ?? 1);
    const grey = await sharp(jpeg, { failOn: 'error' }).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    if (grey.info.width !== width || grey.info.height !== height) {
      throw new ImageDecodeError(`DICOM JPEG is ${grey.info.width}×${grey.info.height}, the header says ${width}×${height}`);
    }
    return samples === 1 ? toDisplay(data, Float64Array.from(grey.data), width, height, photometric) : { width, height, data: new Uint8Array(grey.data) };
  }
  const bitsAllocated = data.uint16(TAG.bitsAllocated) ?? 16;
  if (isDecompressible(transferSyntax)) {
    if (samples !== 1) throw unsupportedImage(`DICOM compressed colour image (${samples} samples per pixel) is not read; send it uncompressed`);
    if (bitsAllocated !== 8 && bitsAllocated !== 16) throw unsupportedImage(`DICOM has ${bitsAllocated} bits per sample; 8 or 16 are read`);
    const frame = dicomParser.readEncapsulatedPixelDataFromFragments(data, element, 0, element.fragments?.length ?? 1);
    const pixels = await decompressFrame(transferSyntax, frame, { width, height, bitsAllocated });
    return toDisplay(data, storedValues(data, pixels, width * height, bitsAllocated, { littleEndian: true, decompressed: true }), width, height, photometric);
  }
  if (!UNCOMPRESSED.has(transferSyntax)) {
    const name = REFUSED_SYNTAXES[transferSyntax] ?? 'an unknown encoding';
    throw unsupportedImage(`DICOM pixel data is ${name} (${transferSyntax}); send it uncompressed or in a still-image encoding DICOM defines (JPEG, JPEG lossless, JPEG-LS, JPEG 2000, RLE)`);
  }
  // A deflated file's data set is read from the inflated copy the parser made.
  const dataBytes = data.byteArray;
  const needed = width * height * samples * (bitsAllocated / 8);
  const available = Math.min(element.length, dataBytes.length - element.dataOffset);
  if (available < needed) throw new ImageDecodeError(`DICOM pixel data is truncated: ${available} of ${needed} bytes`);
  const pixels = dataBytes.subarray(element.dataOffset, element.dataOffset + needed);
  if (samples === 3) return rgbToGrey(data, pixels, width, height, bitsAllocated, photometric);
  if (samples !== 1) throw unsupportedImage(`DICOM has ${samples} samples per pixel; 1 (grey) or 3 (RGB) are read`);
  const values = storedValues(data, pixels, width * height, bitsAllocated, { littleEndian: transferSyntax !== EXPLICIT_BIG, decompressed: false });
  return toDisplay(data, values, width, height, photometric);
}

/**
 * The stored values of a grey image, unsigned or two's complement, masked to BitsStored. Values a
 * lossy codec decoded above BitsStored's range (JPEG 2000 overshoots at sharp edges) are clamped to its
 * highest value, as masking would wrap them to dark.
 */
function storedValues(data: DataSet, pixels: Uint8Array, count: number, bitsAllocated: number, options: { littleEndian: boolean; decompressed: boolean }): Float64Array {
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw unsupportedImage(`DICOM has ${bitsAllocated} bits per sample; 8 or 16 are read`);
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
function toDisplay(data: DataSet, values: Float64Array, width: number, height: number, photometric: string): GreyImage {
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2') {
    throw unsupportedImage(`DICOM photometric interpretation ${photometric} with one sample is not read`);
  }
  const slope = data.floatString(TAG.rescaleSlope) ?? 1;
  const intercept = data.floatString(TAG.rescaleIntercept) ?? 0;
  for (let i = 0; i < values.length; i++) values[i] = (values[i] as number) * slope + intercept;
  const center = data.floatString(TAG.windowCenter);
  const windowWidth = data.floatString(TAG.windowWidth);
  const out = center !== undefined && windowWidth !== undefined && windowWidth >= 1 ? applyWindow(values, center, windowWidth) : stretchToBytes(values);
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
async function rgbToGrey(data: DataSet, pixels: Uint8Array, width: number, height: number, bitsAllocated: number, photometric: string): Promise<GreyImage> {
  if (bitsAllocated !== 8 || photometric !== 'RGB') throw unsupportedImage(`DICOM colour image (${photometric}, ${bitsAllocated} bits) is not read; 8-bit RGB is`);
  let interleaved = pixels;
  if (data.uint16(TAG.planarConfiguration) === 1) {
    // Planes R…R G…G B…B into R G B triples.
    const plane = width * height;
    interleaved = new Uint8Array(3 * plane);
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) interleaved[3 * i + c] = pixels[c * plane + i] as number;
  }
  const grey = await sharp(interleaved, { raw: { width, height, channels: 3 } }).toColourspace('b-w').raw().toBuffer();
  return { width, height, data: new Uint8Array(grey) };
}
