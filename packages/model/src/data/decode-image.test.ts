import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { dicomFile } from '../../../../tests/helpers/dicom-file.js';
import { headPhantom } from '../../../../tests/helpers/head-phantom.js';
import { decodeGrey, decodeRgb } from './decode-image.js';
import { stretchToBytes } from './grey-levels.js';
import { ImageDecodeError } from './image-decode-error.js';
import { defaultPreprocessParams, preprocessImage } from './preprocess.js';

const width = 64;
const height = 48;

const phantom = () => headPhantom(width, height);

async function png8(pixels: Uint8Array): Promise<Buffer> {
  return sharp(pixels, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

/** The same pixels stored as 16-bit values times `factor` (16: a 12-bit scanner range; 257: full range). */
async function png16(pixels: Uint8Array, factor: number, channels: 1 | 3 = 1): Promise<Buffer> {
  const values = new Uint16Array(width * height * channels);
  for (let i = 0; i < values.length; i++) values[i] = (pixels[Math.floor(i / channels)] as number) * factor;
  return sharp(values, { raw: { width, height, channels } })
    .toColourspace(channels === 1 ? 'grey16' : 'rgb16')
    .png()
    .toBuffer();
}

/** An uncompressed single-channel TIFF of 32-bit floats (sharp writes only 8 or 16 bits, so it is built here). */
function floatTiff(w: number, h: number, value: number): Buffer {
  const tags: [number, number, number][] = [
    [256, 3, w], // ImageWidth, SHORT
    [257, 3, h], // ImageLength
    [258, 3, 32], // BitsPerSample
    [259, 3, 1], // Compression: none
    [262, 3, 1], // PhotometricInterpretation: black is zero
    [273, 4, 0], // StripOffsets, LONG: set below
    [277, 3, 1], // SamplesPerPixel
    [278, 3, h], // RowsPerStrip
    [279, 4, w * h * 4], // StripByteCounts
    [339, 3, 3], // SampleFormat: IEEE float
  ];
  const ifdSize = 2 + tags.length * 12 + 4;
  const dataOffset = 8 + ifdSize;
  const out = Buffer.alloc(dataOffset + w * h * 4);
  out.write('II', 0, 'latin1');
  out.writeUInt16LE(42, 2);
  out.writeUInt32LE(8, 4);
  out.writeUInt16LE(tags.length, 8);
  tags.forEach(([tag, type, v], i) => {
    const at = 10 + i * 12;
    out.writeUInt16LE(tag, at);
    out.writeUInt16LE(type, at + 2);
    out.writeUInt32LE(1, at + 4);
    if (type === 3) out.writeUInt16LE(v, at + 8);
    else out.writeUInt32LE(tag === 273 ? dataOffset : v, at + 8);
  });
  for (let i = 0; i < w * h; i++) out.writeFloatLE(value, dataOffset + i * 4);
  return out;
}

describe('decodeGrey', () => {
  it.each([
    ['12 bits used of 16', 16],
    ['the full 16-bit range', 257],
  ])('windows a 16-bit greyscale PNG (%s) to the pixels of the 8-bit image', async (_, factor) => {
    const pixels = phantom();
    const bytes = await png16(pixels, factor);
    expect((await sharp(bytes).metadata()).depth).toBe('ushort');
    const grey = await decodeGrey(bytes);
    expect([grey.width, grey.height]).toEqual([width, height]);
    expect(Buffer.from(grey.data).equals(Buffer.from(pixels))).toBe(true);
  });

  it('gives a 12-bit PNG the model input of the same image at 8 bits', async () => {
    const pixels = phantom();
    const params = defaultPreprocessParams(32);
    const [eight, twelve] = await Promise.all([preprocessImage(await png8(pixels), params), preprocessImage(await png16(pixels, 16), params)]);
    expect(Buffer.from(twelve.pixels).equals(Buffer.from(eight.pixels))).toBe(true);
    expect(twelve.geometry).toEqual(eight.geometry);
  });

  it('windows a 16-bit colour PNG through its grey levels', async () => {
    const pixels = phantom();
    const grey = await decodeGrey(await png16(pixels, 16, 3));
    const differences = grey.data.reduce((n, v, i) => n + (Math.abs(v - (pixels[i] as number)) > 1 ? 1 : 0), 0);
    expect(differences).toBe(0);
  });

  it('refuses a floating-point image with the reason instead of clipping it', async () => {
    const tiff = floatTiff(8, 8, 0.5);
    expect((await sharp(tiff).metadata()).depth).toBe('float');
    const error = await decodeGrey(tiff).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageDecodeError);
    expect((error as Error).message).toMatch(/unsupported sample format float: send 8- or 16-bit images/);
    expect((error as ImageDecodeError).unsupported).toBe(true);
  });

  it('reports bytes that are no image', async () => {
    await expect(decodeGrey(new TextEncoder().encode('not an image'))).rejects.toThrow(/not a decodable image/);
    await expect(decodeGrey(new Uint8Array())).rejects.toThrow(/empty file/);
  });
});

describe('decodeRgb', () => {
  it('draws a 12-bit PNG as the 8-bit image, not near black', async () => {
    const pixels = phantom();
    const [eight, twelve] = await Promise.all([decodeRgb(await png8(pixels)), decodeRgb(await png16(pixels, 16))]);
    expect(twelve.channels).toBe(3);
    expect([twelve.width, twelve.height]).toEqual([width, height]);
    expect(twelve.data.equals(eight.data)).toBe(true);
  });

  it('keeps colour in an 8-bit colour image', async () => {
    const red = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#c00000' } }).png().toBuffer();
    const rgb = await decodeRgb(red);
    expect([...rgb.data.subarray(0, 3)]).toEqual([192, 0, 0]);
  });
});

describe('a DICOM frame read twice', () => {
  const [width, height] = [16, 12];
  const pixels = Array.from({ length: width * height }, (_, i) => (i * 37) % 4096);

  it('is decoded once for the models and the overlay of the same bytes, and each reader gets pixels of its own', async () => {
    const file = dicomFile({ width, height, pixels, bitsStored: 12 });
    const grey = await decodeGrey(file);
    // Change the pixel data in place: a reader of the same bytes still gets the first decode.
    const changed = file.subarray(file.length - 2 * width * height).map((v) => 255 - v);
    file.set(changed, file.length - changed.length);
    const rgb = await decodeRgb(file);
    expect(Array.from({ length: width * height }, (_, i) => rgb.data[3 * i])).toEqual([...grey.data]);
    // Other bytes (a copy) are decoded afresh, and show the change.
    expect((await decodeGrey(Buffer.from(file))).data).not.toEqual(grey.data);
    // A caller may change what it was given without changing what the next reader gets.
    grey.data.fill(0);
    expect((await decodeGrey(file)).data.some((v) => v > 0)).toBe(true);
  });
});

describe('stretchToBytes', () => {
  it('stretches the lowest stored value to 0 and the highest to 255', () => {
    expect([...stretchToBytes(Uint16Array.from([1000, 1500, 2000, 3000]))]).toEqual([0, 64, 128, 255]);
  });

  it('turns a flat image black instead of dividing by zero', () => {
    expect([...stretchToBytes(Uint16Array.from([700, 700, 700]))]).toEqual([0, 0, 0]);
  });

  it('stretches negative and fractional values, as a rescaled DICOM holds', () => {
    expect([...stretchToBytes(Float64Array.from([-1000, -500.5, 0]))]).toEqual([0, 127, 255]);
  });
});

describe('transparency', () => {
  /** The phantom's grey levels with the given opacity per pixel, as a grey-and-alpha PNG. */
  async function withAlpha(alphaAt: (i: number) => number): Promise<Buffer> {
    const grey = phantom();
    const pixels = new Uint8Array(width * height * 2);
    grey.forEach((v, i) => {
      pixels[2 * i] = v;
      pixels[2 * i + 1] = alphaAt(i);
    });
    return sharp(pixels, { raw: { width, height, channels: 2 } }).png().toBuffer();
  }

  it('keeps the grey levels of an image equally translucent throughout, as stored, and makes one transparent throughout black', async () => {
    for (const opacity of [128, 255, 10]) {
      const decoded = await decodeGrey(await withAlpha(() => opacity));
      expect(Array.from(decoded.data), `opacity ${opacity}`).toEqual(Array.from(phantom()));
    }
    expect(Math.max(...(await decodeGrey(await withAlpha(() => 0))).data)).toBe(0);
  });

  it('turns transparent areas black, the scanner background, where the opacity varies', async () => {
    // The left half transparent, the right half opaque.
    const decoded = await decodeGrey(await withAlpha((i) => (i % width < width / 2 ? 0 : 255)));
    const grey = phantom();
    for (let i = 0; i < grey.length; i++) expect(decoded.data[i]).toBe(i % width < width / 2 ? 0 : grey[i]);
  });
});
