import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { headPhantom } from '../../../../tests/helpers/head-phantom.js';
import { decodeRefusal } from '../../../../tests/helpers/decode-refusal.js';
import { dicomFile, TransferSyntax } from '../../../../tests/helpers/dicom-file.js';
import { decodeGrey, decodeRgb, MAX_INPUT_PIXELS } from './decode-image.js';
import { decodeDicomGrey, isDicom, parseDicomFile, readDicomHeader, slicePlane } from './dicom.js';
import { ybrFullToRgb } from './dicom-display.js';
import { MAX_INFLATED_DICOM_BYTES } from './dicom-inflate.js';
import { defaultPreprocessParams, preprocessImage } from './preprocess.js';

const width = 40;
const height = 30;

const slice = () => headPhantom(width, height);

describe('DICOM', () => {
  it('is recognised by DICM after the preamble, and its header read without the pixels', () => {
    const file = dicomFile({ width, height, pixels: slice(), bitsAllocated: 8 });
    expect(isDicom(file)).toBe(true);
    expect(isDicom(new Uint8Array(200))).toBe(false);
    expect(readDicomHeader(file)).toEqual({ width, height, frames: 1, transferSyntax: TransferSyntax.explicitLittle, identifiers: {}, sopClassUid: '1.2.840.10008.5.1.4.1.1.4', modality: 'MR' });
  });

  it('tells the plane of a slice from its orientation', () => {
    expect(slicePlane([1, 0, 0, 0, 1, 0])).toBe('axial');
    expect(slicePlane([0, 1, 0, 0, 0, -1])).toBe('sagittal');
    expect(slicePlane([1, 0, 0, 0, 0, -1])).toBe('coronal');
    // Tilted 20° about the left-right axis: still axial; 45°: between axial and coronal.
    expect(slicePlane([1, 0, 0, 0, Math.cos(0.35), -Math.sin(0.35)])).toBe('axial');
    expect(slicePlane([1, 0, 0, 0, Math.SQRT1_2, -Math.SQRT1_2])).toBe('oblique');
    expect(slicePlane([0, 0, 0, 0, 0, 0])).toBeUndefined();
    const sagittal = dicomFile({ width: 2, height: 2, pixels: [0, 1, 2, 3], orientation: [0, 1, 0, 0, 0, -1] });
    expect(readDicomHeader(sagittal).plane).toBe('sagittal');
    expect(readDicomHeader(dicomFile({ width: 2, height: 2, pixels: [0, 1, 2, 3] })).plane).toBeUndefined();
  });

  it('reads the identifiers a PACS knows the image by, without their padding', () => {
    const identifiers = { studyInstanceUid: '1.2.3.4', seriesInstanceUid: '1.2.3.4.5', sopInstanceUid: '1.2.3.4.5.67', accessionNumber: 'ACC123' };
    for (const transferSyntax of [TransferSyntax.explicitLittle, TransferSyntax.implicitLittle]) {
      const file = dicomFile({ width: 2, height: 2, pixels: [0, 1, 2, 3], identifiers, transferSyntax });
      expect(readDicomHeader(file).identifiers).toEqual(identifiers);
    }
  });

  it('reads the patient ID and its issuer, and leaves them out when the ID is absent or blank', () => {
    const pixels = [0, 1, 2, 3];
    expect(readDicomHeader(dicomFile({ width: 2, height: 2, pixels, patient: { id: 'P-0042 ', issuer: 'HOSP' } })).patient).toEqual({ id: 'P-0042', issuer: 'HOSP' });
    expect(readDicomHeader(dicomFile({ width: 2, height: 2, pixels, patient: { id: 'P-7' }, transferSyntax: TransferSyntax.implicitLittle })).patient).toEqual({ id: 'P-7' });
    expect(readDicomHeader(dicomFile({ width: 2, height: 2, pixels, patient: { id: '  ', name: 'Doe^J' } })).patient).toBeUndefined();
    expect(readDicomHeader(dicomFile({ width: 2, height: 2, pixels })).patient).toBeUndefined();
  });

  it.each([
    ['explicit VR little endian', TransferSyntax.explicitLittle],
    ['implicit VR little endian', TransferSyntax.implicitLittle],
    ['explicit VR big endian', TransferSyntax.explicitBig],
  ])('reads 12-bit values (%s) through the window the file carries', async (_, transferSyntax) => {
    const pixels = slice();
    // Stored 0–4080, window spanning exactly that range: the display levels are the slice's own.
    const file = dicomFile({ width, height, pixels: Array.from(pixels, (v) => v * 16), bitsStored: 12, transferSyntax, window: { center: 2040.5, width: 4081 } });
    const grey = await decodeGrey(file);
    expect([grey.width, grey.height]).toEqual([width, height]);
    expect(Buffer.from(grey.data).equals(Buffer.from(pixels))).toBe(true);
  });

  it('applies the rescale to signed values, then clips to the window', async () => {
    // Hounsfield-like: stored −1000…1000, intercept −24; window 0 ± 50.
    const stored = [-1000, -100, 0, 24, 49, 74, 1000, 24];
    const file = dicomFile({ width: 4, height: 2, pixels: stored, signed: true, rescale: { slope: 1, intercept: -24 }, window: { center: 0, width: 100 } });
    const grey = await decodeDicomGrey(file, MAX_INPUT_PIXELS);
    // ((v − (c − 0.5)) / (w − 1) + 0.5) × 255, clipped: −1024 → 0, −124 → 0, −24 → 67, 0 → 129, 25 → 193, 50 → 255.
    expect([...grey.data]).toEqual([0, 0, 67, 129, 193, 255, 255, 129]);
  });

  it('reads odd windows as the standard says: width 1 is a threshold, a width under 1 is no window, and a window past every value leaves the slice blank', async () => {
    const values = [100, 200, 300, 400];
    const decoded = async (window: { center: number; width: number }) => [...(await decodeDicomGrey(dicomFile({ width: 2, height: 2, pixels: values, window }), MAX_INPUT_PIXELS)).data];
    // Width 1: values up to c − 0.5 are black, values above white (PS3.3 C.11.2.1.2.1), with no division by zero.
    expect(await decoded({ center: 250.5, width: 1 })).toEqual([0, 0, 255, 255]);
    expect(await decoded({ center: 200.5, width: 1 })).toEqual([0, 0, 255, 255]);
    // Width 0 (not allowed): the window is ignored, and the slice stretched from its lowest to its highest value.
    expect(await decoded({ center: 250, width: 0 })).toEqual([0, 85, 170, 255]);
    // A window far above every value: all black, which the models refuse as blank rather than calling it.
    const dark = dicomFile({ width: 40, height: 40, pixels: Array.from({ length: 1600 }, (_, i) => i % 400), window: { center: 5000, width: 100 } });
    await expect(preprocessImage(dark, defaultPreprocessParams(64))).rejects.toThrow('image is blank: every pixel has grey level 0');
  });

  it('stretches from the lowest to the highest value when the file carries no window, and inverts MONOCHROME1', async () => {
    const values = [100, 200, 300, 400];
    const plain = await decodeDicomGrey(dicomFile({ width: 2, height: 2, pixels: values }), MAX_INPUT_PIXELS);
    expect([...plain.data]).toEqual([0, 85, 170, 255]);
    const inverted = await decodeDicomGrey(dicomFile({ width: 2, height: 2, pixels: values, photometric: 'MONOCHROME1' }), MAX_INPUT_PIXELS);
    expect([...inverted.data]).toEqual([255, 170, 85, 0]);
  });

  it('ignores bits above BitsStored', async () => {
    // 0xF000 in the unused high bits of a 12-bit value must not count.
    const file = dicomFile({ width: 2, height: 1, pixels: [0xf000 | 0, 0xf000 | 4095], bitsStored: 12 });
    expect([...(await decodeDicomGrey(file, MAX_INPUT_PIXELS)).data]).toEqual([0, 255]);
  });

  it('greys an RGB secondary capture, planar or interleaved, as it greys the same PNG', async () => {
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) % 256;
    const expected = await decodeGrey(await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer());
    const planar = new Uint8Array(rgb.length);
    for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) planar[c * width * height + i] = rgb[3 * i + c] as number;
    for (const [pixels, isPlanar] of [[rgb, false], [planar, true]] as const) {
      const grey = await decodeGrey(dicomFile({ width, height, pixels, bitsAllocated: 8, samples: 3, planar: isPlanar }));
      expect(Buffer.from(grey.data).equals(Buffer.from(expected.data))).toBe(true);
    }
  });

  it("converts YCbCr to RGB by the standard's equations, on any number of bits", () => {
    // Grey, and pure red, green and blue as the forward equations (PS3.3 C.7.6.3.1.2) give them, rounded.
    const eight = Uint16Array.from([128, 128, 128, 76, 85, 255, 150, 44, 21, 29, 255, 107]);
    ybrFullToRgb(eight, 8);
    expect([...eight]).toEqual([128, 128, 128, 254, 0, 0, 0, 255, 1, 0, 0, 254]);
    // On 16 bits, chroma is centred on 32768, and what falls outside is clipped.
    const sixteen = Uint16Array.from([32768, 32768, 32768, 20000, 65535, 32768]);
    ybrFullToRgb(sixteen, 16);
    expect([...sixteen]).toEqual([32768, 32768, 32768, 20000, 8724, 65535]);
  });

  it('reads uncompressed YBR_FULL_422, pixels paired along a row, as the YBR_FULL pixels they stand for', async () => {
    const count = width * height;
    const full = new Uint8Array(3 * count);
    const paired = new Uint8Array(2 * count);
    for (let pair = 0; pair < count / 2; pair++) {
      const [y1, y2, cb, cr] = [(pair * 7) % 256, (pair * 13 + 40) % 256, (pair * 5) % 256, 255 - ((pair * 3) % 256)];
      full.set([y1, cb, cr, y2, cb, cr], 6 * pair);
      paired.set([y1, y2, cb, cr], 4 * pair);
    }
    const expected = await decodeGrey(dicomFile({ width, height, pixels: full, bitsAllocated: 8, samples: 3, photometric: 'YBR_FULL' }));
    const grey = await decodeGrey(dicomFile({ width, height, pixels: paired, bitsAllocated: 8, samples: 3, photometric: 'YBR_FULL_422' }));
    expect(Buffer.from(grey.data).equals(Buffer.from(expected.data))).toBe(true);
    // Read as RGB, the same samples give another image: the conversion happened.
    const asRgb = await decodeGrey(dicomFile({ width, height, pixels: full, bitsAllocated: 8, samples: 3 }));
    expect(Buffer.from(asRgb.data).equals(Buffer.from(expected.data))).toBe(false);
    const odd = await decodeRefusal(dicomFile({ width: 3, height: 2, pixels: new Uint8Array(12), bitsAllocated: 8, samples: 3, photometric: 'YBR_FULL_422' }));
    expect(odd.unsupported).toBe(true);
    expect(odd.message).toBe('DICOM YBR_FULL_422 image of 3 columns is not read; its pixels come in pairs along a row');
  });

  it('reads 16-bit colour planar or interleaved, in either byte order', async () => {
    const count = width * height;
    const rgb = Uint16Array.from({ length: 3 * count }, (_, i) => (i * 2713) % 65536);
    const planar = new Uint16Array(rgb.length);
    for (let i = 0; i < count; i++) for (let c = 0; c < 3; c++) planar[c * count + i] = rgb[3 * i + c] as number;
    const expected = await decodeGrey(dicomFile({ width, height, pixels: rgb, samples: 3 }));
    for (const transferSyntax of [TransferSyntax.explicitLittle, TransferSyntax.explicitBig]) {
      for (const [pixels, isPlanar] of [[rgb, false], [planar, true]] as const) {
        const grey = await decodeGrey(dicomFile({ width, height, pixels, samples: 3, planar: isPlanar, transferSyntax }));
        expect(Buffer.from(grey.data).equals(Buffer.from(expected.data))).toBe(true);
      }
    }
  });

  it('decodes a baseline JPEG frame', async () => {
    const pixels = slice();
    const jpeg = await sharp(pixels, { raw: { width, height, channels: 1 } }).jpeg({ quality: 100 }).toBuffer();
    const file = dicomFile({ width, height, bitsAllocated: 8, encapsulated: jpeg, transferSyntax: TransferSyntax.jpegBaseline });
    const grey = await decodeGrey(file);
    const direct = await sharp(jpeg).toColourspace('b-w').raw().toBuffer();
    // No window in the file: the JPEG's levels are stretched from lowest to highest, which they already span.
    expect(Math.max(...grey.data.map((v, i) => Math.abs(v - (direct[i] as number))))).toBeLessThanOrEqual(1);
  });

  it('refuses a JPEG frame that declares more pixels than the DICOM header before decoding it', async () => {
    const jpeg = await sharp(slice(), { raw: { width, height, channels: 1 } }).jpeg().toBuffer();
    // The frame header (SOF0) of the same JPEG, made to declare 16000×16000 pixels: a decompression bomb.
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    const bomb = Buffer.from(jpeg);
    bomb.writeUInt16BE(16_000, sof + 5);
    bomb.writeUInt16BE(16_000, sof + 7);
    const file = dicomFile({ width, height, bitsAllocated: 8, encapsulated: bomb, transferSyntax: TransferSyntax.jpegBaseline });
    expect((await decodeRefusal(file)).message).toBe(`DICOM JPEG declares 16000×16000 pixels, the header says ${width}×${height}`);
  });

  it('reads a deflated file, and refuses one whose data set inflates past its bound without inflating it further', async () => {
    const pixels = slice();
    const deflated = dicomFile({ width, height, pixels, bitsAllocated: 8, transferSyntax: TransferSyntax.deflated });
    expect(await decodeGrey(deflated)).toEqual(await decodeGrey(dicomFile({ width, height, pixels, bitsAllocated: 8 })));
    // A few tens of kilobytes that inflate past the bound: at a thousand to one, 4 MB would make 4 GB.
    const bomb = dicomFile({ width, height, pixels, bitsAllocated: 8, transferSyntax: TransferSyntax.deflated, privateBytes: MAX_INFLATED_DICOM_BYTES });
    expect(bomb.length).toBeLessThan(MAX_INFLATED_DICOM_BYTES / 500);
    const refusal = 'DICOM cannot be parsed: its deflated data set inflates to more than 64 MiB; send it uncompressed';
    expect(() => readDicomHeader(bomb)).toThrow(refusal);
    expect((await decodeRefusal(bomb)).message).toBe(refusal);
  });

  it('parses a file once for its header and its frames, and gives the header of one whose pixel data is cut short', async () => {
    const pixels = slice();
    const file = dicomFile({ width, height, pixels, bitsAllocated: 8, transferSyntax: TransferSyntax.deflated, identifiers: { sopInstanceUid: '1.2.3.4' } });
    const parsed = parseDicomFile(file);
    expect(parsed.header).toEqual(readDicomHeader(file));
    expect(await parsed.image(MAX_INPUT_PIXELS).decodeFrame(0)).toEqual(await decodeDicomGrey(file, MAX_INPUT_PIXELS));
    const plain = dicomFile({ width, height, pixels, bitsAllocated: 8, identifiers: { sopInstanceUid: '1.2.3.4' } });
    const cut = parseDicomFile(plain.subarray(0, plain.length - 100));
    expect(cut.header.identifiers.sopInstanceUid).toBe('1.2.3.4');
    expect(() => cut.image(MAX_INPUT_PIXELS)).toThrow(/^DICOM cannot be parsed: /);
    expect(() => parseDicomFile(file.subarray(0, 200))).toThrow(/^DICOM cannot be parsed: /);
  });

  it('gives a DICOM slice the model input of the same slice as PNG, and draws it for the overlay', async () => {
    // Larger than the other tests' slice: preprocessing refuses images under 32 pixels a side.
    const [analysedWidth, analysedHeight] = [64, 48];
    const pixels = headPhantom(analysedWidth, analysedHeight);
    const params = defaultPreprocessParams(32);
    const png = await sharp(pixels, { raw: { width: analysedWidth, height: analysedHeight, channels: 1 } }).png().toBuffer();
    const dicom = dicomFile({ width: analysedWidth, height: analysedHeight, pixels: Array.from(pixels, (v) => v * 16), bitsStored: 12 });
    const [fromPng, fromDicom] = await Promise.all([preprocessImage(png, params), preprocessImage(dicom, params)]);
    expect(Buffer.from(fromDicom.pixels).equals(Buffer.from(fromPng.pixels))).toBe(true);
    expect(fromDicom.geometry).toEqual(fromPng.geometry);
    const [drawnPng, drawnDicom] = await Promise.all([decodeRgb(png), decodeRgb(dicom)]);
    expect(drawnDicom.data.equals(drawnPng.data)).toBe(true);
  });

  it.each([
    ['MPEG-4 video', () => dicomFile({ width, height, bitsAllocated: 8, encapsulated: new Uint8Array(10), transferSyntax: TransferSyntax.mpeg4 }), /DICOM pixel data is MPEG-4 video \(1\.2\.840\.10008\.1\.2\.4\.102\); send it uncompressed or in a still-image encoding/],
    ['a CT slice', () => dicomFile({ width: 2, height: 2, pixels: new Uint16Array(4), modality: 'CT' }), /DICOM modality is CT; btd analyses MR slices/],
    ['no pixel data promised in full', () => dicomFile({ width, height, pixels: new Uint16Array(10) }), /DICOM pixel data is truncated: 20 of 2400 bytes/],
    ['a cut-off file', () => dicomFile({ width, height, pixels: new Uint16Array(width * height) }).subarray(0, 500), /DICOM (pixel data is truncated|cannot be parsed)/],
  ])('refuses %s with the reason', async (_, make, reason) => {
    expect((await decodeRefusal(make())).message).toMatch(reason);
  });

  it.each([
    ['MPEG-4 video', dicomFile({ width: 4, height: 4, bitsAllocated: 8, encapsulated: new Uint8Array(10), transferSyntax: TransferSyntax.mpeg4 })],
    ['a CT slice', dicomFile({ width: 2, height: 2, pixels: new Uint16Array(4), modality: 'CT' })],
  ])('tells %s, which it does not analyse, from a broken file', async (_, file) => {
    expect((await decodeRefusal(file)).unsupported).toBe(true);
  });

  it('reads each frame of a multi-frame file, and refuses a frame it does not have', async () => {
    const frames = [slice(), slice().map((v) => 255 - v), slice().reverse()];
    const pixels = Uint16Array.from(frames.flatMap((frame) => Array.from(frame, (v) => v * 16)));
    // One window for all: the levels come back as they were.
    const file = dicomFile({ width, height, pixels, bitsStored: 12, frames: 3, window: { center: 2040.5, width: 4081 } });
    expect(readDicomHeader(file).frames).toBe(3);
    for (const [i, expected] of frames.entries()) {
      const grey = await decodeDicomGrey(file, MAX_INPUT_PIXELS, i);
      expect(Buffer.from(grey.data).equals(Buffer.from(expected))).toBe(true);
    }
    await expect(decodeDicomGrey(file, MAX_INPUT_PIXELS, 3)).rejects.toThrow('DICOM has 3 frame(s); frame 4 does not exist');
    await expect(decodeDicomGrey(file.subarray(0, file.length - 100), MAX_INPUT_PIXELS, 2)).rejects.toThrow(/DICOM (pixel data is truncated|cannot be parsed)/);
  });

  it("reads an enhanced image's rescale, window and orientation from its frames' functional groups", async () => {
    const stored = [100, 200, 300, 400];
    const file = dicomFile({
      width: 2,
      height: 1,
      pixels: stored,
      frames: 2,
      functionalGroups: {
        // Shared: a rescale of ×2 and a sagittal plane; per frame: a window of its own.
        shared: { rescale: { slope: 2, intercept: 0 }, orientation: [0, 1, 0, 0, 0, -1] },
        perFrame: [{ window: { center: 300.5, width: 400 } }, { window: { center: 700.5, width: 400 } }],
      },
    });
    expect(readDicomHeader(file).plane).toBe('sagittal');
    // Rescaled, frame 1 holds 200 and 400, a quarter into its window from either end; frame 2 600 and 800, likewise in its own.
    expect([...(await decodeDicomGrey(file, MAX_INPUT_PIXELS, 0)).data]).toEqual([64, 191]);
    expect([...(await decodeDicomGrey(file, MAX_INPUT_PIXELS, 1)).data]).toEqual([64, 191]);
    const topLevel = dicomFile({ width: 2, height: 1, pixels: stored, frames: 2, window: { center: 300.5, width: 200 } });
    // Without functional groups, the top-level window serves every frame: frame 2 holds 300 and 400.
    expect([...(await decodeDicomGrey(topLevel, MAX_INPUT_PIXELS, 1)).data]).toEqual([128, 255]);
  });

  it('reads a secondary capture marked OT, and calls a cut-off file broken rather than unsupported', async () => {
    await expect(decodeGrey(dicomFile({ width: 2, height: 2, pixels: [0, 1, 2, 3], modality: 'OT' }))).resolves.toMatchObject({ width: 2, height: 2 });
    const cut = dicomFile({ width, height, pixels: new Uint16Array(10) });
    expect((await decodeRefusal(cut)).unsupported).toBe(false);
  });

  it('refuses a file whose header is not DICOM after the magic', async () => {
    const bytes = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from([1, 2, 3])]);
    expect((await decodeRefusal(bytes)).message).toMatch(/^DICOM cannot be parsed: /);
  });

  it('refuses an image over the pixel limit before reading its pixels', async () => {
    const file = dicomFile({ width: 100, height: 100, pixels: new Uint16Array(100 * 100) });
    await expect(decodeDicomGrey(file, 9_999)).rejects.toThrow('DICOM image has 100×100 pixels; the limit is 9999');
  });
});
