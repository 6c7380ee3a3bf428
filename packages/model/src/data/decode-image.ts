import sharp from 'sharp';
import { ImageDecodeError } from './image-decode-error.js';

/** A single-channel 8-bit image in row-major order. */
export interface GreyImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Refuse images above this many pixels before decoding (decompression bombs). */
export const MAX_INPUT_PIXELS = 64_000_000;

/**
 * Decodes JPEG, PNG, WebP, TIFF or GIF bytes by their content (never by file name) to greyscale.
 * Transparent areas become black, matching the scanner background.
 */
export async function decodeGrey(bytes: Uint8Array): Promise<GreyImage> {
  if (bytes.byteLength === 0) throw new ImageDecodeError('empty file: 0 bytes');
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS })
      .rotate()
      .flatten({ background: '#000000' })
      .toColourspace('b-w')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 1) throw new ImageDecodeError(`unexpected channel count ${info.channels}`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    if (error instanceof ImageDecodeError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ImageDecodeError(`not a decodable image: ${reason}`, { cause: error });
  }
}
