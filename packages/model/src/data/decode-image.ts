import sharp, { type Channels, type Sharp } from 'sharp';
import { decodeDicomGrey, isDicom } from './dicom.js';
import { stretchToBytes } from './grey-levels.js';
import { ImageDecodeError, unsupportedImage } from './image-decode-error.js';

/** A single-channel 8-bit image in row-major order. */
export interface GreyImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** An 8-bit sRGB image (3 channels) in row-major order, for drawing on. */
export interface RgbImage {
  width: number;
  height: number;
  channels: Channels;
  data: Buffer;
}

/** Refuse images above this many pixels before decoding (decompression bombs). */
export const MAX_INPUT_PIXELS = 64_000_000;

/**
 * How sharp reads a raster image for the models: an error anywhere in the data fails the image (a PNG
 * chunk whose checksum is wrong as much as a file cut short), not only a truncation.
 */
const FAIL_ON = 'error';

/**
 * The decoder for `bytes`: orientation applied, transparent areas black (the scanner background).
 * An image equally translucent throughout (an export that set one opacity, above none, for every
 * pixel) keeps its grey levels as stored: over black it would be analysed darker than it is. An image
 * transparent throughout shows nothing: black.
 * 16-bit images (PNG or TIFF exports of raw scanner values, often 12 bits used of 16) are stretched from
 * their lowest to their highest stored value, as a viewer's default window does; 8-bit images are taken as
 * rendered. Other sample formats (float, 32-bit, signed) are refused rather than clipped.
 */
async function openImage(bytes: Uint8Array, maxPixels = MAX_INPUT_PIXELS): Promise<{ pipeline: Sharp; wide: boolean }> {
  const open = () => sharp(bytes, { failOn: FAIL_ON, limitInputPixels: Math.min(maxPixels, MAX_INPUT_PIXELS) });
  const { depth, hasAlpha } = await open().metadata();
  if (depth !== 'uchar' && depth !== 'ushort') {
    throw unsupportedImage(`unsupported sample format ${depth ?? 'unknown'}: send 8- or 16-bit images`);
  }
  const translucent = hasAlpha && (await uniformlyTranslucent(open()));
  const pipeline = translucent ? open().rotate().removeAlpha() : open().rotate().flatten({ background: '#000000' });
  return { pipeline, wide: depth === 'ushort' };
}

/** Whether every pixel of an image with an alpha channel has the same opacity, and some. */
async function uniformlyTranslucent(image: Sharp): Promise<boolean> {
  const alpha = (await image.stats()).channels.at(-1);
  return alpha !== undefined && alpha.min === alpha.max && alpha.min > 0;
}

async function wideToGrey(pipeline: Sharp): Promise<GreyImage> {
  const { data, info } = await pipeline.toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 1) throw new ImageDecodeError(`unexpected channel count ${info.channels}`);
  // A typed view needs an even offset; sharp's buffers have one, but a copy costs little if not.
  const aligned = data.byteOffset % 2 === 0 ? data : Buffer.from(data);
  const values = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  return { width: info.width, height: info.height, data: stretchToBytes(values) };
}

interface Readers<T> {
  raster(image: { pipeline: Sharp; wide: boolean }): Promise<T>;
  grey(image: GreyImage): Promise<T>;
}

/** How many decoded DICOM frames are kept for a second reader of the same bytes. */
const RECENT_DICOM_FRAMES = 8;
const recentDicomFrames: { bytes: WeakRef<Uint8Array>; frame: number; grey: Promise<GreyImage> }[] = [];

/**
 * One frame of a DICOM image, decoded once for the readers that ask for it in turn: a job decodes
 * its image for the models, then again for the overlay, and a compressed frame (JPEG 2000 above
 * all) costs more to decode than the rest of that work. The last few frames decoded are kept, by
 * the identity of their bytes (held weakly: the cache keeps no file in memory), and a failure is
 * not kept. Readers must not change the pixels.
 */
function decodeDicomFrameOnce(bytes: Uint8Array, frame: number): Promise<GreyImage> {
  const at = recentDicomFrames.findIndex((entry) => entry.bytes.deref() === bytes && entry.frame === frame);
  if (at >= 0) return recentDicomFrames[at]!.grey;
  const grey = decodeDicomGrey(bytes, MAX_INPUT_PIXELS, frame);
  const entry = { bytes: new WeakRef(bytes), frame, grey };
  recentDicomFrames.unshift(entry);
  recentDicomFrames.length = Math.min(recentDicomFrames.length, RECENT_DICOM_FRAMES);
  grey.catch(() => {
    const index = recentDicomFrames.indexOf(entry);
    if (index >= 0) recentDicomFrames.splice(index, 1);
  });
  return grey;
}

/** DICOM goes to its own decoder, any other content to sharp; only DICOM has frames past the first. */
async function decode<T>(bytes: Uint8Array, readers: Readers<T>, frame: number): Promise<T> {
  if (bytes.byteLength === 0) throw new ImageDecodeError('not a decodable image: empty file (0 bytes)');
  try {
    if (isDicom(bytes)) return await readers.grey(await decodeDicomFrameOnce(bytes, frame));
    if (frame !== 0) throw new ImageDecodeError(`frame ${frame + 1} asked of an image that is not DICOM, which has one`);
    return await readers.raster(await openImage(bytes));
  } catch (error) {
    if (error instanceof ImageDecodeError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ImageDecodeError(`not a decodable image: ${reason}`, { cause: error });
  }
}

async function rasterToGrey({ pipeline, wide }: { pipeline: Sharp; wide: boolean }): Promise<GreyImage> {
  if (wide) return wideToGrey(pipeline);
  const { data, info } = await pipeline.toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 1) throw new ImageDecodeError(`unexpected channel count ${info.channels}`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/**
 * Decodes a raster image (JPEG, PNG, WebP, TIFF, GIF; not DICOM) to the grey levels `decodeGrey` gives
 * it, read exactly as the models read it (what decodes here decodes for them), with at most `maxPixels`
 * (never more than MAX_INPUT_PIXELS). Sharp's own errors are thrown as they are, for the caller to tell
 * a truncated image from a corrupt one.
 */
export async function decodeRasterGrey(bytes: Uint8Array, maxPixels = MAX_INPUT_PIXELS): Promise<GreyImage> {
  return rasterToGrey(await openImage(bytes, maxPixels));
}

/**
 * Decodes JPEG, PNG, WebP, TIFF, GIF or DICOM bytes by their content (never by file name) to 8-bit
 * greyscale; DICOM as `decodeDicomGrey` describes, one frame (0-based; the first unless given).
 */
export async function decodeGrey(bytes: Uint8Array, frame = 0): Promise<GreyImage> {
  return decode(bytes, {
    raster: rasterToGrey,
    // A copy: the decoded frame is kept for the next reader, and a caller may change its own pixels.
    grey: async (image) => ({ ...image, data: image.data.slice() }),
  }, frame);
}

async function toRgb(pipeline: Sharp): Promise<RgbImage> {
  const { data, info } = await pipeline.toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data };
}

function greyPipeline({ width, height, data }: GreyImage): Sharp {
  return sharp(data, { raw: { width, height, channels: 1 } });
}

/** Decodes an image (one frame of a DICOM image) for display: colour kept; 16-bit and DICOM images windowed as `decodeGrey` windows them. */
export async function decodeRgb(bytes: Uint8Array, frame = 0): Promise<RgbImage> {
  return decode(
    bytes,
    {
      raster: async ({ pipeline, wide }) => toRgb(wide ? greyPipeline(await wideToGrey(pipeline)) : pipeline),
      grey: async (image) => toRgb(greyPipeline(image)),
    },
    frame,
  );
}
