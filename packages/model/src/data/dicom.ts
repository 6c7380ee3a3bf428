import dicomParser, { type DataSet, type Element } from 'dicom-parser';
import sharp from 'sharp';
import { decompressFrame, decompressJpeg12, isDecompressible, jpegFrameSize, LOSSY_JPEG, type FrameLayout } from './dicom-codecs.js';
import { inflateDataSet } from './dicom-inflate.js';
import { colourToGrey, displayParameters, type DisplayParameters, frameGroup, PLANE_ORIENTATION_GROUP, storedSamplesPerPixel, storedValues, toDisplay } from './dicom-display.js';
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
  /** Modality (MR, CT, …), when the file has it. */
  modality?: string;
  /** From Image Orientation (Patient), when the file has it. */
  plane?: SlicePlane;
  /** Patient ID (0010,0020) and its issuer (0010,0021), when the file has an ID: what keeps a patient's slices in one split. */
  patient?: { id: string; issuer?: string };
}

const IMPLICIT_LITTLE = '1.2.840.10008.1.2';
const EXPLICIT_BIG = '1.2.840.10008.1.2.2';
const DEFLATED = '1.2.840.10008.1.2.1.99';
/** Uncompressed pixel data; the deflated syntax compresses the data set, which the parser inflates. */
const UNCOMPRESSED = new Set([IMPLICIT_LITTLE, '1.2.840.10008.1.2.1', EXPLICIT_BIG, DEFLATED]);
/** Syntaxes that are refused, by name, so the sender knows what to change. */
const REFUSED_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2.4.100': 'MPEG2 video',
  '1.2.840.10008.1.2.4.101': 'MPEG2 video',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 video',
  '1.2.840.10008.1.2.4.103': 'MPEG-4 video',
  '1.2.840.10008.1.2.4.104': 'MPEG-4 video',
  '1.2.840.10008.1.2.4.105': 'MPEG-4 video',
  '1.2.840.10008.1.2.4.106': 'MPEG-4 video',
  '1.2.840.10008.1.2.4.107': 'HEVC video',
  '1.2.840.10008.1.2.4.108': 'HEVC video',
};

const TAG = {
  transferSyntax: 'x00020010',
  samplesPerPixel: 'x00280002',
  photometric: 'x00280004',
  frames: 'x00280008',
  rows: 'x00280010',
  columns: 'x00280011',
  bitsAllocated: 'x00280100',
  pixelRepresentation: 'x00280103',
  modality: 'x00080060',
  studyInstanceUid: 'x0020000d',
  seriesInstanceUid: 'x0020000e',
  sopInstanceUid: 'x00080018',
  sopClassUid: 'x00080016',
  accessionNumber: 'x00080050',
  orientation: 'x00200037',
  patientId: 'x00100020',
  issuerOfPatientId: 'x00100021',
  pixelData: 'x7fe00010',
} as const;

const IDENTIFIER_TAGS = ['studyInstanceUid', 'seriesInstanceUid', 'sopInstanceUid', 'accessionNumber'] as const;

/** Modalities analysed: MR, and OT (other), which secondary captures of MR images often carry. */
const ANALYSED_MODALITIES = new Set(['MR', 'OT']);

/** Whether btd analyses images of this modality; a file that names none is taken as MR. */
export function isAnalysedModality(modality: string | undefined): boolean {
  return modality === undefined || ANALYSED_MODALITIES.has(modality);
}

/** True for a DICOM Part 10 file: `DICM` after the 128-byte preamble. */
export function isDicom(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && String.fromCharCode(...bytes.subarray(128, 132)) === 'DICM';
}

function parse(bytes: Uint8Array, headerOnly: boolean): DataSet {
  // dicom-parser reads Buffers with Buffer methods: a plain Uint8Array (as bytes that crossed to
  // another thread arrive) is viewed as a Buffer, without a copy. A deflated data set is inflated by
  // `inflateDataSet`, which bounds it.
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return dicomParser.parseDicom(buffer, { inflater: inflateDataSet, ...(headerOnly ? { untilTag: TAG.pixelData } : {}) });
  } catch (error) {
    throw new ImageDecodeError(`DICOM cannot be parsed: ${parserReason(error)}`);
  }
}

/** dicom-parser throws strings, or objects holding one, as well as errors. */
function parserReason(error: unknown): string {
  const reason = typeof error === 'string' ? error : error instanceof Error ? error.message : String((error as { exception?: unknown }).exception ?? error);
  return reason.replace(/^dicomParser\.\w+:\s*/, '');
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
  const modality = text(TAG.modality);
  // A classic image has its orientation top-level; an enhanced one in its first frame's functional groups.
  const oriented = frameGroup(data, 0, PLANE_ORIENTATION_GROUP);
  const orientation = Array.from({ length: 6 }, (_, i) => oriented.floatString(TAG.orientation, i));
  const plane = orientation.every((v) => v !== undefined) ? slicePlane(orientation as number[]) : undefined;
  const transferSyntax = text(TAG.transferSyntax) ?? IMPLICIT_LITTLE;
  const patientId = text(TAG.patientId);
  const issuer = text(TAG.issuerOfPatientId);
  const patient = patientId ? { id: patientId, ...(issuer ? { issuer } : {}) } : undefined;
  return {
    width,
    height,
    frames,
    transferSyntax,
    identifiers,
    ...(sopClassUid ? { sopClassUid } : {}),
    ...(modality ? { modality } : {}),
    ...(plane ? { plane } : {}),
    ...(patient ? { patient } : {}),
  };
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

/** A parsed DICOM image whose frames decode one by one, the file parsed once. */
export interface DicomImage {
  readonly header: DicomHeader;
  /** One frame (0-based) as `decodeDicomGrey` describes. */
  decodeFrame(frame: number): Promise<GreyImage>;
}

/**
 * Parses a DICOM image and checks what holds for every frame: the pixel limit and the modality (MR or OT).
 *
 * @throws ImageDecodeError when the file cannot be parsed, is too large or is not an MR image
 */
export function openDicomImage(bytes: Uint8Array, maxPixels: number): DicomImage {
  const data = parse(bytes, false);
  return imageOf(data, headerOf(data), maxPixels);
}

/** A DICOM file parsed once, pixel data included: its header, and its image for decoding. */
export interface ParsedDicom {
  readonly header: DicomHeader;
  /** Bytes of the inflated copy of a deflated file that the parse holds (and its image reads from); 0 for any other file. */
  readonly inflatedBytes: number;
  /** The image as `openDicomImage` gives it; throws what that throws, or why the pixel data did not parse. */
  image(maxPixels: number): DicomImage;
}

/**
 * Parses a DICOM file once for both its header and its frames: a deflated file is inflated once,
 * where `readDicomHeader` then `openDicomImage` would inflate it twice. A file whose header reads but
 * whose data set does not (pixel data cut short) gives its header, and an image that throws the reason.
 *
 * @throws ImageDecodeError when the header cannot be read, as `readDicomHeader` throws it
 */
export function parseDicomFile(bytes: Uint8Array): ParsedDicom {
  let data: DataSet;
  try {
    data = parse(bytes, false);
  } catch (error) {
    // Only on this failure is the header parsed on its own, to tell a bad header from a bad data set.
    const header = readDicomHeader(bytes);
    return {
      header,
      inflatedBytes: 0,
      image: () => {
        throw error;
      },
    };
  }
  const header = headerOf(data);
  const inflatedBytes = header.transferSyntax === DEFLATED ? data.byteArray.length : 0;
  return { header, inflatedBytes, image: (maxPixels) => imageOf(data, header, maxPixels) };
}

function imageOf(data: DataSet, header: DicomHeader, maxPixels: number): DicomImage {
  const { width, height } = header;
  if (width * height > maxPixels) throw new ImageDecodeError(`DICOM image has ${width}×${height} pixels; the limit is ${maxPixels}`);
  if (!isAnalysedModality(header.modality)) throw unsupportedImage(`DICOM modality is ${header.modality}; btd analyses MR slices`);
  return { header, decodeFrame: async (frame) => decodeFrame(data, header, frame) };
}

/**
 * Decodes one frame of a DICOM image (the first unless `frame`, 0-based, says otherwise) to 8-bit grey,
 * as a viewer shows it: the modality rescale (slope, intercept), then the first VOI window the frame
 * carries, or its lowest to highest value if it carries none, and MONOCHROME1 inverted. An enhanced
 * (multi-frame) image's rescale and window come from the frame's functional groups. Uncompressed (also
 * deflated), lossy JPEG of 8 or 12 bits, and JPEG lossless, JPEG-LS, JPEG 2000, HTJ2K (unsigned only) and
 * RLE encodings are read, grey or colour (RGB, YBR_FULL or YBR_FULL_422, of 8 or 16 bits, taken to grey).
 * Any other encoding, a modality other than MR (or OT), or pixel data shorter than the header promises is
 * refused with the reason.
 */
export async function decodeDicomGrey(bytes: Uint8Array, maxPixels: number, frame = 0): Promise<GreyImage> {
  return openDicomImage(bytes, maxPixels).decodeFrame(frame);
}

async function decodeFrame(data: DataSet, header: DicomHeader, frame: number): Promise<GreyImage> {
  const { width, height, frames, transferSyntax } = header;
  if (!Number.isInteger(frame) || frame < 0 || frame >= frames) throw new ImageDecodeError(`DICOM has ${frames} frame(s); frame ${frame + 1} does not exist`);
  const element = data.elements[TAG.pixelData];
  if (!element) throw new ImageDecodeError('DICOM has no pixel data');
  const photometric = data.string(TAG.photometric)?.trim() || 'MONOCHROME2';
  const samples = data.uint16(TAG.samplesPerPixel) ?? 1;
  const display = displayParameters(data, frame);

  const bitsAllocated = data.uint16(TAG.bitsAllocated) ?? 16;
  const layout: FrameLayout = { width, height, bitsAllocated, signed: data.uint16(TAG.pixelRepresentation) === 1, samples };
  let pixels: Uint8Array | undefined;
  if (LOSSY_JPEG.has(transferSyntax)) {
    const jpeg = encapsulatedFrame(data, element, frame, frames);
    const { precision } = checkJpegSize(jpeg, width, height);
    if (precision !== 12) return decodeJpeg8(jpeg, width, height, samples, photometric, display);
    if (samples !== 1) throw unsupportedImage(`DICOM 12-bit JPEG colour image (${samples} samples per pixel) is not read; grey is`);
    if (bitsAllocated !== 16) throw new ImageDecodeError(`DICOM 12-bit JPEG frame in ${bitsAllocated}-bit samples; the header must allocate 16`);
    pixels = await decompressJpeg12(jpeg, layout);
  }
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw unsupportedImage(`DICOM has ${bitsAllocated} bits per sample; 8 or 16 are read`);
  if (!pixels && isDecompressible(transferSyntax)) {
    if (samples !== 1 && samples !== 3) throw unsupportedImage(`DICOM compressed image of ${samples} samples per pixel is not read; 1 (grey) or 3 (colour) are`);
    pixels = await decompressFrame(transferSyntax, encapsulatedFrame(data, element, frame, frames), layout);
  }
  if (pixels) {
    // JPEG 2000's colour transforms (YBR_RCT, YBR_ICT) are undone by the decoder: its samples are RGB.
    const decoded = photometric === 'YBR_RCT' || photometric === 'YBR_ICT' ? 'RGB' : photometric;
    if (samples === 3) return colourToGrey(data, pixels, { width, height, bitsAllocated, photometric: decoded, decompressed: true, littleEndian: true });
    return toDisplay(storedValues(data, pixels, width * height, bitsAllocated, { littleEndian: true, decompressed: true }), width, height, photometric, display);
  }
  if (!UNCOMPRESSED.has(transferSyntax)) {
    const name = REFUSED_SYNTAXES[transferSyntax] ?? 'an unknown encoding';
    throw unsupportedImage(`DICOM pixel data is ${name} (${transferSyntax}); send it uncompressed or in a still-image encoding DICOM defines (JPEG, JPEG lossless, JPEG-LS, JPEG 2000, HTJ2K, RLE)`);
  }
  // A deflated file's data set is read from the inflated copy the parser made.
  const dataBytes = data.byteArray;
  const frameBytes = width * height * storedSamplesPerPixel(photometric, samples, width) * (bitsAllocated / 8);
  const needed = (frame + 1) * frameBytes;
  const available = Math.min(element.length, dataBytes.length - element.dataOffset);
  if (available < needed) throw new ImageDecodeError(`DICOM pixel data is truncated: ${available} of ${needed} bytes`);
  const start = element.dataOffset + frame * frameBytes;
  const stored = dataBytes.subarray(start, start + frameBytes);
  const littleEndian = transferSyntax !== EXPLICIT_BIG;
  if (samples === 3) return colourToGrey(data, stored, { width, height, bitsAllocated, photometric, decompressed: false, littleEndian });
  if (samples !== 1) throw unsupportedImage(`DICOM has ${samples} samples per pixel; 1 (grey) or 3 (colour) are read`);
  const values = storedValues(data, stored, width * height, bitsAllocated, { littleEndian, decompressed: false });
  return toDisplay(values, width, height, photometric, display);
}

/**
 * An 8-bit lossy JPEG frame, which sharp decodes: libjpeg converts YCbCr (YBR_FULL_422, YBR_FULL) to RGB
 * as the frame's own markers say, whatever the header calls it, and sharp greys the RGB.
 */
async function decodeJpeg8(jpeg: Uint8Array, width: number, height: number, samples: number, photometric: string, display: DisplayParameters): Promise<GreyImage> {
  // The limit holds even if the frame header read above is not the one libjpeg decodes.
  const grey = await sharp(jpeg, { failOn: 'error', limitInputPixels: width * height }).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  if (grey.info.width !== width || grey.info.height !== height) {
    throw new ImageDecodeError(`DICOM JPEG is ${grey.info.width}×${grey.info.height}, the header says ${width}×${height}`);
  }
  return samples === 1 ? toDisplay(Float64Array.from(grey.data), width, height, photometric, display) : { width, height, data: new Uint8Array(grey.data) };
}

/**
 * Refuses a JPEG frame whose own header declares another size than the DICOM header, before it is
 * decoded: the DICOM header passed the pixel limit, and a 1 MB JPEG may declare 16000×16000 pixels.
 * Gives the frame's precision (bits per sample).
 */
function checkJpegSize(jpeg: Uint8Array, width: number, height: number): { precision: number } {
  let declared: { width: number; height: number; precision?: number };
  try {
    declared = jpegFrameSize(jpeg);
  } catch (error) {
    throw new ImageDecodeError(`DICOM JPEG frame cannot be read: ${(error as Error).message}`);
  }
  if (declared.width !== width || declared.height !== height) {
    throw new ImageDecodeError(`DICOM JPEG declares ${declared.width}×${declared.height} pixels, the header says ${width}×${height}`);
  }
  return { precision: declared.precision ?? 8 };
}

/** The compressed bytes of one frame: every fragment for a single frame, else as the offset table or the fragments place it. */
function encapsulatedFrame(data: DataSet, element: Element, frame: number, frames: number): Uint8Array {
  if (!element.fragments?.length) throw new ImageDecodeError('DICOM compressed pixel data has no fragments');
  try {
    if (frames === 1) return dicomParser.readEncapsulatedPixelDataFromFragments(data, element, 0, element.fragments.length);
    return dicomParser.readEncapsulatedImageFrame(data, element, frame);
  } catch (error) {
    throw new ImageDecodeError(`DICOM frame ${frame + 1} of ${frames} cannot be located in the compressed pixel data: ${parserReason(error)}`);
  }
}
