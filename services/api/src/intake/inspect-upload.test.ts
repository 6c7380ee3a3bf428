import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { mriSlices, pngDeclaring, truncatedJpeg } from '../../../../tests/api-fixtures.js';
import { dicomFile } from '../../../../tests/helpers/dicom-file.js';
import { ApiError } from '../errors/api-error.js';
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
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#777' } }).png().toBuffer();
    const accepted = await inspectUpload(png, 'mislabelled.jpg', limits);
    expect(accepted.format.mime).toBe('image/png');
    expect([accepted.header.width, accepted.header.height]).toEqual([40, 30]);
  });

  it('counts the frames of a multi-frame DICOM file, and refuses too many before decoding any', async () => {
    const frames = (count: number) => dicomFile({ width: 4, height: 4, pixels: new Uint16Array(16 * count), frames: count });
    expect((await inspectUpload(frames(8), 'series.dcm', limits)).header.frames).toBe(8);
    // Nine frames promised, one sent: were it decoded first, the refusal would be for truncation.
    const error = await rejection(frames(9).subarray(0, frames(9).length - 8 * 32), 'series.dcm');
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
});
