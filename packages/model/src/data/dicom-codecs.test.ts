import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { PHANTOM_HEIGHT, PHANTOM_WIDTH, phantomEncapsulated12Bit, phantomFrames12Bit, phantomFrames12BitFile, phantomRgb16Slice, phantomRgb16Values, phantomRgbSlice, phantomSlice12Bit } from '../../../../tests/fixtures/dicom/phantom-slice.js';
import { decodeRefusal } from '../../../../tests/helpers/decode-refusal.js';
import { dicomFile, TransferSyntax } from '../../../../tests/helpers/dicom-file.js';
import { decodeGrey, MAX_INPUT_PIXELS } from './decode-image.js';
import { decodeRle } from './dicom-codecs.js';
import { decodeDicomGrey } from './dicom.js';

const JPEG_EXTENDED = '1.2.840.10008.1.2.4.51';

const fixture = (name: string) => readFileSync(new URL(`../../../../tests/fixtures/dicom/${name}`, import.meta.url));

/** Largest and mean absolute difference of two grey images, in display levels. */
function difference(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
}

describe('compressed DICOM', () => {
  it('has fixtures made from the slice the writer makes today', () => {
    // make-fixtures.ts compressed these sources with DCMTK and GDCM; they must still be what the tests expect.
    expect(fixture('uncompressed.dcm').equals(phantomSlice12Bit())).toBe(true);
    expect(fixture('uncompressed-signed.dcm').equals(phantomSlice12Bit(true))).toBe(true);
    expect(fixture('uncompressed-3-frames.dcm').equals(phantomFrames12BitFile())).toBe(true);
    expect(fixture('uncompressed-rgb.dcm').equals(phantomRgbSlice())).toBe(true);
    expect(fixture('uncompressed-rgb-16bit.dcm').equals(phantomRgb16Slice())).toBe(true);
  });

  it.each([
    ['RLE', 'rle-3-frames.dcm'],
    ['JPEG-LS', 'jpeg-ls-lossless-3-frames.dcm'],
  ])('reads each frame of a multi-frame %s file (DCMTK) exactly as the uncompressed frames', async (_, name) => {
    expect(phantomFrames12Bit()).toHaveLength(3);
    for (const frame of [0, 1, 2]) {
      const [expected, grey] = await Promise.all([decodeDicomGrey(fixture('uncompressed-3-frames.dcm'), MAX_INPUT_PIXELS, frame), decodeDicomGrey(fixture(name), MAX_INPUT_PIXELS, frame)]);
      expect(difference(grey.data, expected.data).max).toBe(0);
    }
    // The frames differ, so each was read from its own place.
    const [first, second] = await Promise.all([0, 1].map(async (frame) => decodeDicomGrey(fixture(name), MAX_INPUT_PIXELS, frame)));
    expect(difference(first!.data, second!.data).max).toBeGreaterThan(0);
  });

  it.each([
    ['deflated explicit VR little endian (DCMTK)', 'deflated.dcm'],
    ['JPEG lossless, first-order prediction (DCMTK)', 'jpeg-lossless.dcm'],
    ['JPEG lossless, selection value 6 (DCMTK)', 'jpeg-lossless-sv6.dcm'],
    ['JPEG-LS lossless (DCMTK)', 'jpeg-ls-lossless.dcm'],
    ['JPEG 2000 lossless (GDCM)', 'jpeg-2000-lossless.dcm'],
    ['RLE lossless (DCMTK)', 'rle.dcm'],
    ['HTJ2K lossless (OpenJPH)', 'htj2k-lossless.dcm'],
    ['signed JPEG lossless, its last pixel in the byte before the end marker', 'jpeg-lossless-signed.dcm'],
    ['signed JPEG-LS lossless', 'jpeg-ls-lossless-signed.dcm'],
    ['signed JPEG 2000 lossless', 'jpeg-2000-lossless-signed.dcm'],
    ['signed RLE lossless', 'rle-signed.dcm'],
  ])('reads %s exactly as the uncompressed slice', async (_, name) => {
    const source = name.includes('signed') ? 'uncompressed-signed.dcm' : 'uncompressed.dcm';
    const [expected, grey] = await Promise.all([decodeGrey(fixture(source)), decodeGrey(fixture(name))]);
    expect([grey.width, grey.height]).toEqual([PHANTOM_WIDTH, PHANTOM_HEIGHT]);
    expect(difference(grey.data, expected.data).max).toBe(0);
  });

  it.each([
    ['RLE (DCMTK)', 'rle-rgb'],
    ['JPEG-LS lossless (DCMTK)', 'jpeg-ls-lossless-rgb'],
    ['JPEG lossless (DCMTK)', 'jpeg-lossless-rgb'],
    ['JPEG 2000 lossless (GDCM)', 'jpeg-2000-lossless-rgb'],
    ['HTJ2K lossless with its colour transform, YBR_RCT (OpenJPH)', 'htj2k-lossless-rgb'],
  ].flatMap(([encoding, name]) => [8, 16].map((bits) => [bits, encoding, `${name}${bits === 16 ? '-16bit' : ''}.dcm`] as const)))(
    'reads RGB of %i bits compressed as %s exactly as the uncompressed slice',
    async (bits, _, name) => {
      const [expected, grey] = await Promise.all([decodeGrey(fixture(bits === 16 ? 'uncompressed-rgb-16bit.dcm' : 'uncompressed-rgb.dcm')), decodeGrey(fixture(name))]);
      expect([grey.width, grey.height]).toEqual([PHANTOM_WIDTH, PHANTOM_HEIGHT]);
      // The slice's green and blue vary apart from its red, so a channel read in the wrong place would show.
      expect(difference(grey.data, expected.data).max).toBe(0);
    },
  );

  it('greys a 16-bit RGB slice as it greys a 16-bit PNG of the same samples, over the full range of grey', async () => {
    const png = await sharp(phantomRgb16Values(), { raw: { width: PHANTOM_WIDTH, height: PHANTOM_HEIGHT, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png).metadata()).depth).toBe('ushort');
    const [expected, grey] = await Promise.all([decodeGrey(png), decodeGrey(fixture('uncompressed-rgb-16bit.dcm'))]);
    expect(difference(grey.data, expected.data).max).toBe(0);
    expect([Math.min(...grey.data), Math.max(...grey.data)]).toEqual([0, 255]);
  });

  it('reads YCbCr (YBR_FULL) uncompressed, RLE, JPEG-LS and JPEG lossless (DCMTK) as libjpeg converts the JPEG they came from to RGB', async () => {
    // DCMTK decompressed the JPEG without converting its YCbCr; sharp's libjpeg converts it: the equations are the same, bar rounding.
    const expected = await decodeGrey(fixture('jpeg-baseline-ybr-full.dcm'));
    for (const name of ['uncompressed-ybr-full.dcm', 'rle-ybr-full.dcm', 'jpeg-ls-lossless-ybr-full.dcm', 'jpeg-lossless-ybr-full.dcm']) {
      const grey = await decodeGrey(fixture(name));
      expect([grey.width, grey.height]).toEqual([PHANTOM_WIDTH, PHANTOM_HEIGHT]);
      const { max, mean } = difference(grey.data, expected.data);
      expect(max).toBeLessThanOrEqual(1);
      expect(mean).toBeLessThan(0.1);
    }
  });

  it('reads lossy JPEG colour in YBR_FULL_422 and YBR_FULL (DCMTK) close to the RGB slice', async () => {
    const expected = await decodeGrey(fixture('uncompressed-rgb.dcm'));
    // The slice's green and blue change from pixel to pixel: halving the chroma across (4:2:2) costs more than keeping it (4:4:4).
    for (const [name, bound] of [['jpeg-baseline-ybr-full-422.dcm', 7], ['jpeg-baseline-ybr-full.dcm', 4]] as const) {
      const { mean } = difference((await decodeGrey(fixture(name))).data, expected.data);
      expect(mean).toBeLessThan(bound);
    }
  });

  it('reads a 12-bit lossy JPEG (JPEG extended, DCMTK) close to the slice', async () => {
    const [expected, grey] = await Promise.all([decodeGrey(fixture('uncompressed.dcm')), decodeGrey(fixture('jpeg-extended-12bit.dcm'))]);
    expect([grey.width, grey.height]).toEqual([PHANTOM_WIDTH, PHANTOM_HEIGHT]);
    const { max, mean } = difference(grey.data, expected.data);
    // A mean of 0.085 levels, at most 1, measured: 1.6 of 4096 stored levels on average.
    expect(max).toBeGreaterThan(0);
    expect(mean).toBeLessThan(0.25);
    expect(max).toBeLessThanOrEqual(2);
  });

  it('reads a deflated file from a plain Uint8Array as from a Buffer', async () => {
    const file = fixture('deflated.dcm');
    const [fromBuffer, fromArray] = await Promise.all([decodeDicomGrey(file, MAX_INPUT_PIXELS), decodeDicomGrey(new Uint8Array(file), MAX_INPUT_PIXELS)]);
    expect(difference(fromArray.data, fromBuffer.data).max).toBe(0);
  });

  it('reads lossy JPEG-LS, JPEG 2000 and HTJ2K close to the slice, without wrapping what overshoots 12 bits', async () => {
    const expected = await decodeGrey(fixture('uncompressed.dcm'));
    // Near-lossless with a deviation of at most 3 of 4096 stored levels: at most one display level.
    expect(difference((await decodeGrey(fixture('jpeg-ls-near-lossless.dcm'))).data, expected.data).max).toBeLessThanOrEqual(1);
    // JPEG 2000 at 60 dB overshoots above 4095 by the one bright pixel; masked to 12 bits it would turn dark.
    const jpeg2000 = difference((await decodeGrey(fixture('jpeg-2000.dcm'))).data, expected.data);
    expect(jpeg2000.mean).toBeLessThan(4);
    expect(jpeg2000.max).toBeLessThan(64);
    const htj2k = difference((await decodeGrey(fixture('htj2k.dcm'))).data, expected.data);
    expect(htj2k.max).toBeGreaterThan(0);
    expect(htj2k.mean).toBeLessThan(4);
    expect(htj2k.max).toBeLessThan(64);
  });

  it('refuses an HTJ2K frame of signed samples, and one that declares more pixels than the header, before decoding it', async () => {
    const codestream = fixture('htj2k-lossless.dcm');
    const start = codestream.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51]));
    const frame = codestream.subarray(start, codestream.lastIndexOf(Buffer.from([0xff, 0xd9])) + 2);
    const signed = await decodeRefusal(phantomEncapsulated12Bit(frame, TransferSyntax.htj2kLossless, { signed: true }));
    expect(signed.unsupported).toBe(true);
    expect(signed.message).toBe('DICOM HTJ2K pixel data with signed samples is not read; send it uncompressed or as JPEG 2000');
    const huge = Buffer.from(frame);
    huge.writeUInt32BE(30_000, 8);
    huge.writeUInt32BE(30_000, 12);
    expect((await decodeRefusal(phantomEncapsulated12Bit(huge, TransferSyntax.htj2k))).message).toBe(`DICOM compressed frame is 30000×30000, the header says ${PHANTOM_WIDTH}×${PHANTOM_HEIGHT}`);
  });

  it('calls broken compressed data broken, not unsupported', async () => {
    const broken = dicomFile({ width: 8, height: 8, encapsulated: Uint8Array.from({ length: 64 }, (_, i) => i), transferSyntax: TransferSyntax.jpeg2000 });
    const error = await decodeRefusal(broken);
    expect(error.message).toMatch(/^DICOM JPEG 2000 pixel data cannot be decoded/);
    expect(error.unsupported).toBe(false);
    const cut = fixture('jpeg-ls-lossless.dcm');
    expect((await decodeRefusal(cut.subarray(0, cut.length - 400))).unsupported).toBe(false);
    // A 12-bit JPEG whose Huffman table is garbage; the decoder, dropped after it, reads the next frame.
    const jpeg12 = Buffer.from(fixture('jpeg-extended-12bit.dcm'));
    const dht = jpeg12.indexOf(Buffer.from([0xff, 0xc4]));
    jpeg12.fill(0xff, dht + 4, dht + 40);
    const bogus = await decodeRefusal(jpeg12);
    expect(bogus.message).toBe('DICOM JPEG extended pixel data cannot be decoded: Bogus Huffman table definition');
    expect(bogus.unsupported).toBe(false);
    await expect(decodeGrey(fixture('jpeg-extended-12bit.dcm'))).resolves.toMatchObject({ width: PHANTOM_WIDTH, height: PHANTOM_HEIGHT });
  });

  it('refuses a 12-bit lossy JPEG frame that stops before its end, which libjpeg would fill with grey', async () => {
    const file = fixture('jpeg-extended-12bit.dcm');
    const frame = file.subarray(file.indexOf(Buffer.from([0xff, 0xd8, 0xff])), file.lastIndexOf(Buffer.from([0xff, 0xd9])) + 2);
    await expect(decodeGrey(phantomEncapsulated12Bit(frame, JPEG_EXTENDED))).resolves.toMatchObject({ width: PHANTOM_WIDTH });
    const cut = await decodeRefusal(phantomEncapsulated12Bit(frame.subarray(0, frame.length >> 1), JPEG_EXTENDED));
    expect(cut.message).toBe('DICOM JPEG frame is truncated: it stops before its end-of-image marker');
    expect(cut.unsupported).toBe(false);
  });

  it('refuses a frame whose size differs from the header', async () => {
    const wide = Buffer.from(fixture('rle.dcm'));
    // Columns (0028,0011) is the last US value before Bits Allocated; claim one column more.
    const at = wide.indexOf(Buffer.from([0x28, 0x00, 0x11, 0x00, 0x55, 0x53, 0x02, 0x00]));
    wide.writeUInt16LE(PHANTOM_WIDTH + 1, at + 8);
    expect((await decodeRefusal(wide)).message).toMatch(/DICOM RLE segment 1 is truncated/);
    const j2k = Buffer.from(fixture('jpeg-2000-lossless.dcm'));
    j2k.writeUInt16LE(PHANTOM_WIDTH + 1, j2k.indexOf(Buffer.from([0x28, 0x00, 0x11, 0x00, 0x55, 0x53, 0x02, 0x00])) + 8);
    expect((await decodeRefusal(j2k)).message).toBe(`DICOM compressed frame is ${PHANTOM_WIDTH}×${PHANTOM_HEIGHT}, the header says ${PHANTOM_WIDTH + 1}×${PHANTOM_HEIGHT}`);
  });

  it('refuses a codestream that declares more pixels than the header before decoding it', async () => {
    const expected = `DICOM compressed frame is 30000×30000, the header says ${PHANTOM_WIDTH}×${PHANTOM_HEIGHT}`;
    // JPEG 2000: Xsiz and Ysiz, 32 bits each, 4 bytes into the SIZ segment (marker FF51).
    const j2k = Buffer.from(fixture('jpeg-2000-lossless.dcm'));
    const siz = j2k.indexOf(Buffer.from([0xff, 0x51]));
    j2k.writeUInt32BE(30_000, siz + 6);
    j2k.writeUInt32BE(30_000, siz + 10);
    expect((await decodeRefusal(j2k)).message).toBe(expected);
    // JPEG-LS and JPEG lossless: Y and X, 16 bits each, 3 bytes into the start-of-frame segment (FFF7, FFC3).
    for (const [name, marker] of [['jpeg-ls-lossless.dcm', 0xf7], ['jpeg-lossless.dcm', 0xc3]] as const) {
      const file = Buffer.from(fixture(name));
      const sof = file.indexOf(Buffer.from([0xff, marker]));
      file.writeUInt16BE(30_000, sof + 5);
      file.writeUInt16BE(30_000, sof + 7);
      expect((await decodeRefusal(file)).message).toBe(expected);
    }
  });

  it('decodes RLE runs and literals, and refuses a header that does not fit the image', () => {
    // One segment: a literal run of 3 bytes (n = 2), then a replicate run of 4 × 9 (n = −3), then a no-op (−128).
    const frame = new Uint8Array(64 + 7);
    new DataView(frame.buffer).setUint32(0, 1, true);
    new DataView(frame.buffer).setUint32(4, 64, true);
    frame.set([2, 1, 2, 3, 0xfd, 9, 0x80], 64);
    expect([...decodeRle(frame, { width: 7, height: 1, bitsAllocated: 8 })]).toEqual([1, 2, 3, 9, 9, 9, 9]);
    expect(() => decodeRle(frame, { width: 7, height: 1, bitsAllocated: 16 })).toThrow('DICOM RLE frame has 1 segments; a grey image of 16 bits has 2');
    expect(() => decodeRle(frame, { width: 8, height: 1, bitsAllocated: 8 })).toThrow('DICOM RLE segment 1 is truncated: 7 of 8 bytes');
    expect(() => decodeRle(frame.subarray(0, 40), { width: 7, height: 1, bitsAllocated: 8 })).toThrow('shorter than its 64-byte header');
  });

  it('refuses colour other than RGB, YBR_FULL or YBR_FULL_422, and video encodings, with what to send instead', async () => {
    for (const name of ['rle-rgb.dcm', 'rle-rgb-16bit.dcm']) {
      const rle = Buffer.from(fixture(name));
      rle.write('HSV ', rle.indexOf(Buffer.from('RGB ')), 'latin1');
      const refusal = await decodeRefusal(rle);
      expect(refusal.unsupported).toBe(true);
      expect(refusal.message).toBe(`DICOM colour image (HSV, ${name.includes('16bit') ? 16 : 8} bits) is not read; RGB, YBR_FULL or YBR_FULL_422 is`);
    }
    const video = await decodeRefusal(dicomFile({ width: 4, height: 4, bitsAllocated: 8, encapsulated: new Uint8Array(16), transferSyntax: TransferSyntax.mpeg4 }));
    expect(video.unsupported).toBe(true);
    expect(video.message).toMatch(/DICOM pixel data is MPEG-4 video \(1\.2\.840\.10008\.1\.2\.4\.102\); send it uncompressed or in a still-image encoding/);
  });
});
