import sharp from 'sharp';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultPreprocessParams, preprocessImage } from '@btd/model';
import { mriSlices, pngDeclaring, truncatedJpeg } from '../../../../tests/api-fixtures.js';
import { dicomFile, TransferSyntax } from '../../../../tests/helpers/dicom-file.js';
import { headPhantom } from '../../../../tests/helpers/head-phantom.js';
import { ApiError } from '../errors/api-error.js';
import { DicomReaderUnavailable, inlineDicomReader, pooledDicomReader } from './dicom-reader.js';
import { inspectUpload } from './inspect-upload.js';

const limits = { maxBytes: 1_000_000, maxPixels: 4_000_000, maxImages: 8 };

async function rejection(bytes: Uint8Array, name = 'scan.jpg'): Promise<ApiError> {
  const error = await inspectUpload(bytes, name, limits).then(
    () => new Error('accepted'),
    (caught: unknown) => caught,
  );
  if (!(error instanceof ApiError)) throw error;
  return error;
}

describe('inspectUpload', () => {
  it('accepts a real JPEG slice and reports its dimensions', async () => {
    const [slice] = mriSlices('yes', 1);
    const accepted = await inspectUpload(slice!.bytes, slice!.name, limits);
    const metadata = await sharp(slice!.bytes).metadata();
    expect(accepted.format.mime).toBe('image/jpeg');
    expect([accepted.header.width, accepted.header.height]).toEqual([metadata.width, metadata.height]);
  });

  it('recognises PNG by content even when the name says .jpg', async () => {
    const png = await sharp({ create: { width: 48, height: 36, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).png().toBuffer();
    const accepted = await inspectUpload(png, 'mislabelled.jpg', limits);
    expect(accepted.format.mime).toBe('image/png');
    expect([accepted.header.width, accepted.header.height]).toEqual([48, 36]);
  });

  it('counts the frames of a multi-frame DICOM file, and refuses too many before decoding any', async () => {
    // Frames as small as the models take: 32×32 pixels of 2 bytes each, none blank.
    const frames = (count: number) => dicomFile({ width: 32, height: 32, pixels: new Uint16Array(1024 * count).map((_, i) => i % 1024), frames: count });
    expect((await inspectUpload(frames(8), 'series.dcm', limits)).header.frames).toBe(8);
    // Nine frames promised, one sent: were it decoded first, the refusal would be for truncation.
    const error = await rejection(frames(9).subarray(0, frames(9).length - 8 * 2048), 'series.dcm');
    expect([error.statusCode, error.code, error.message]).toEqual([413, 'too_many_images', '"series.dcm": holds 9 frames, each an image; at most 8 per study']);
  });

  it('rejects an empty file', async () => {
    const error = await rejection(new Uint8Array(0));
    expect([error.statusCode, error.code]).toEqual([400, 'empty_file']);
  });

  it('rejects a file over the byte limit before looking inside', async () => {
    const error = await rejection(new Uint8Array(limits.maxBytes + 1));
    expect([error.statusCode, error.code]).toEqual([413, 'file_too_large']);
  });

  it('rejects text named .jpg as an unsupported type', async () => {
    const error = await rejection(Buffer.from('patient notes, not an image\n'.repeat(20)));
    expect([error.statusCode, error.code]).toEqual([415, 'unsupported_type']);
    expect(error.message).toContain('"scan.jpg"');
  });

  it('rejects a PNG declaring 30000×30000 pixels without decoding it', async () => {
    const error = await rejection(pngDeclaring(30_000, 30_000), 'bomb.png');
    expect([error.statusCode, error.code]).toEqual([422, 'image_too_large']);
    expect(error.message).toContain('30000×30000');
  });

  it('rejects a truncated JPEG whose header is intact', async () => {
    const error = await rejection(truncatedJpeg());
    expect([error.statusCode, error.code]).toEqual([422, 'image_truncated']);
  });

  it('rejects a PNG cut short as truncated', async () => {
    // sharp's types ask for a background, which it ignores when it creates noise.
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).png().toBuffer();
    const error = await rejection(png.subarray(0, png.length - 200), 'cut.png');
    expect([error.statusCode, error.code]).toEqual([422, 'image_truncated']);
  });

  it('refuses, as the workers would, a PNG whose data is whole but whose checksum is wrong', async () => {
    const png = Buffer.from(await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).png().toBuffer());
    // The last byte of the image data chunk's CRC: libvips reads it anyway unless told to fail on errors.
    const idat = png.indexOf('IDAT', 0, 'latin1');
    png[idat + 4 + png.readUInt32BE(idat - 4) + 3]! ^= 0xff;
    const error = await rejection(png, 'export.png');
    expect([error.statusCode, error.code, error.message]).toEqual([422, 'image_undecodable', '"export.png": PNG data cannot be decoded (libpng read error)']);
    await expect(preprocessImage(png, defaultPreprocessParams(64))).rejects.toThrow('libpng read error');
  });

  it('refuses a blank image as the models see it: a transparent PNG is black to them, whatever its colours', async () => {
    const rgba = Uint8Array.from({ length: 64 * 64 * 4 }, (_, i) => (i % 4 === 3 ? 0 : (i * 37) % 256));
    const png = await sharp(rgba, { raw: { width: 64, height: 64, channels: 4 } }).png().toBuffer();
    const error = await rejection(png, 'clear.png');
    expect([error.statusCode, error.code, error.message]).toEqual([422, 'image_blank', '"clear.png": is blank: every pixel has grey level 0, so there is nothing to analyse']);
    await expect(preprocessImage(png, defaultPreprocessParams(64))).rejects.toThrow('image is blank: every pixel has grey level 0');
  });

  it('accepts a 16-bit PNG of two values one apart, which the models stretch from black to white', async () => {
    // Its lower half one stored value above its upper half: a head of black and white to the models.
    const values = new Uint16Array(64 * 64).fill(1000).fill(1001, 64 * 32);
    const png = await sharp(values, { raw: { width: 64, height: 64, channels: 1 } }).toColourspace('grey16').png().toBuffer();
    expect((await inspectUpload(png, 'export.png', limits)).format.mime).toBe('image/png');
    await expect(preprocessImage(png, defaultPreprocessParams(64))).resolves.toMatchObject({ size: 64 });
  });

  it('calls a truncated JPEG truncated while other images decode beside it', async () => {
    // libvips can lose the message of a failure while another image decodes; 40 pairs side by side.
    const [slice] = mriSlices('yes', 1);
    const codes = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const [, refused] = await Promise.allSettled([inspectUpload(slice!.bytes, 'good.jpg', limits), inspectUpload(truncatedJpeg(), 'cut.jpg', limits)]);
        return refused.status === 'rejected' ? (refused.reason as ApiError).code : 'accepted';
      }),
    );
    expect(new Set(codes)).toEqual(new Set(['image_truncated']));
  });
});

describe('DICOM frames checked on threads that have failed', () => {
  it('fails the request as the service\'s error, not as a refusal of the file', async () => {
    const check = pooledDicomReader(1, new URL('../../../../tests/fixtures/threads/failing-task.mjs', import.meta.url).href);
    const file = readFileSync(new URL('../../../../tests/fixtures/dicom/jpeg-2000-lossless.dcm', import.meta.url));
    await expect(inspectUpload(file, 'slice.dcm', limits, { dicom: check })).rejects.toBeInstanceOf(DicomReaderUnavailable);
    await check.close();
  });
});

describe.each([
  ['on the event loop', () => inlineDicomReader()],
  ['on a pool of threads', () => pooledDicomReader(2)],
])('DICOM frames checked %s', (_, makeCheck) => {
  const check = makeCheck();
  const checks = { dicom: check };
  const fixture = (name: string) => readFileSync(new URL(`../../../../tests/fixtures/dicom/${name}`, import.meta.url));
  const refusal = async (bytes: Uint8Array) => {
    const error = await inspectUpload(bytes, 'slice.dcm', limits, checks).then(
      () => new Error('accepted'),
      (caught: unknown) => caught,
    );
    if (!(error instanceof ApiError)) throw error;
    return [error.statusCode, error.code, error.message];
  };
  afterAll(() => check.close());

  it('accepts compressed slices and multi-frame files whose every frame decodes, several at once', async () => {
    const names = ['jpeg-2000-lossless.dcm', 'htj2k-lossless.dcm', 'jpeg-ls-lossless-3-frames.dcm', 'rle-rgb.dcm', 'deflated.dcm', 'jpeg-extended-12bit.dcm', 'uncompressed-ybr-full.dcm', 'jpeg-lossless-rgb-16bit.dcm'];
    const accepted = await Promise.all(names.map(async (name) => inspectUpload(fixture(name), name, limits, checks)));
    expect(accepted.map((a) => a.header.frames)).toEqual([1, 1, 3, 1, 1, 1, 1, 1]);
  });

  it('refuses a file cut short, and a frame that does not decode, as undecodable with the reason', async () => {
    const cut = fixture('jpeg-ls-lossless-3-frames.dcm');
    expect(await refusal(cut.subarray(0, cut.length - 400))).toEqual([
      422,
      'image_undecodable',
      '"slice.dcm": DICOM data cannot be decoded (DICOM cannot be parsed: dicomParser:parseDicomDataSetExplicit: buffer overrun)',
    ]);
    const garbage = dicomFile({ width: 8, height: 8, encapsulated: Uint8Array.from({ length: 64 }, (_, i) => i), transferSyntax: TransferSyntax.jpeg2000 });
    expect(await refusal(garbage)).toEqual([
      422,
      'image_undecodable',
      '"slice.dcm": DICOM data cannot be decoded (DICOM JPEG 2000 pixel data cannot be decoded: no JPEG 2000 codestream header)',
    ]);
  });

  it('leaves the blank frames of a multi-frame file out, and refuses a file whose every frame is blank', async () => {
    const side = 32;
    const head = Uint16Array.from(headPhantom(side, side), (v) => v * 16);
    const blank = (value: number) => new Uint16Array(side * side).fill(value);
    const series = (...frames: Uint16Array[]) => {
      const pixels = new Uint16Array(side * side * frames.length);
      frames.forEach((frame, i) => pixels.set(frame, i * side * side));
      return dicomFile({ width: side, height: side, pixels, frames: frames.length });
    };
    // Nearly blank: a frame of the background with a few stray bright pixels (4 of 1,024), a burnt-in dot say.
    const stray = blank(0).map((value, i) => (i % 300 === 7 ? 4000 : value));
    const padded = await inspectUpload(series(blank(0), head, blank(700), stray), 'series.dcm', limits, checks);
    expect([padded.header.frames, padded.blankFrames]).toEqual([
      4,
      [
        { frame: 0, level: 0, uniform: true, contentShare: 0 },
        { frame: 2, level: 0, uniform: true, contentShare: 0 },
        { frame: 3, level: 0, uniform: false, contentShare: 4 / 1024 },
      ],
    ]);
    expect(await refusal(series(blank(0), blank(700)))).toEqual([422, 'image_blank', '"slice.dcm": is blank: each of its 2 frames has one grey level throughout (0), so there is nothing to analyse']);
    expect(await refusal(series(stray, blank(0)))).toEqual([
      422,
      'image_blank',
      '"slice.dcm": is blank: each of its 2 frames is blank or nearly so, its background of grey level (0), so there is nothing to analyse',
    ]);
    expect(await refusal(series(blank(40)))).toEqual([422, 'image_blank', '"slice.dcm": is blank: every pixel has grey level 0, so there is nothing to analyse']);
  });

  it('refuses an encoding it does not read as unsupported, with the reason', async () => {
    const htj2k = fixture('htj2k-lossless.dcm');
    const codestream = htj2k.subarray(htj2k.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51])), htj2k.lastIndexOf(Buffer.from([0xff, 0xd9])) + 2);
    const signed = dicomFile({ width: 64, height: 48, bitsStored: 12, signed: true, encapsulated: codestream, transferSyntax: TransferSyntax.htj2kLossless });
    expect(await refusal(signed)).toEqual([422, 'image_unsupported', '"slice.dcm": DICOM HTJ2K pixel data with signed samples is not read; send it uncompressed or as JPEG 2000']);
  });
});
