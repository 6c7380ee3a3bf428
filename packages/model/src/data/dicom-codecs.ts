import { ImageDecodeError, unsupportedImage } from './image-decode-error.js';

/** What the header says a frame holds; the decoded frame must agree. */
export interface FrameLayout {
  width: number;
  height: number;
  /** 8 or 16. */
  bitsAllocated: number;
  /** Pixel Representation 1: two's complement samples. */
  signed?: boolean;
  /** Samples per pixel: 1 (grey, the default) or 3 (colour). */
  samples?: number;
}

interface Codec {
  name: string;
  /**
   * The frame's size as its codestream declares it, read before anything is decoded, so that a frame
   * claiming more pixels than the DICOM header (a decompression bomb) is refused before a decoder
   * allocates for it. Throws if the codestream has no header.
   */
  declaredSize?(frame: Uint8Array): CodestreamSize;
  /** The frame's samples, one or two bytes each, little endian. */
  decode(frame: Uint8Array, layout: FrameLayout): Promise<Uint8Array>;
}

/**
 * OpenJPEG logs each frame's progress; output on stdout would break `btd eval --json`. A new object
 * for each module: Emscripten builds its module on the object it is given.
 */
const quiet = () => ({ print: () => undefined, printErr: () => undefined });

/** A frame's size as its codestream declares it, read before anything is decoded. */
interface CodestreamSize {
  width: number;
  height: number;
  components: number;
  /** Bits per sample, where the header gives it (JPEG's start of frame). */
  precision?: number;
}

/** Runs one of the WebAssembly decoders (CharLS, OpenJPEG) on a frame and copies its samples out. */
function decodeInWasm(decoder: WasmFrameDecoder, frame: Uint8Array, layout: FrameLayout): Uint8Array {
  try {
    decoder.getEncodedBuffer(frame.length).set(frame);
    decoder.decode();
    const info = decoder.getFrameInfo();
    checkLayout(info.width, info.height, info.componentCount, Math.ceil(info.bitsPerSample / 8), layout);
    // A view of the decoder's memory, freed by `delete`: copy it.
    return new Uint8Array(decoder.getDecodedBuffer());
  } finally {
    decoder.delete();
  }
}

/** A codec whose WebAssembly module is compiled on first use, once per thread. */
function wasmCodec(name: string, declaredSize: (frame: Uint8Array) => CodestreamSize, load: () => Promise<new () => WasmFrameDecoder>): Codec {
  let decoderClass: Promise<new () => WasmFrameDecoder> | undefined;
  return {
    name,
    declaredSize,
    async decode(frame, layout) {
      decoderClass ??= load();
      return decodeInWasm(new (await decoderClass)(), frame, layout);
    },
  };
}

const jpegLs = wasmCodec('JPEG-LS', (frame) => jpegFrameSize(frame), async () => {
  const module = await import('@cornerstonejs/codec-charls/decodewasmjs');
  return (await module.default(quiet())).JpegLSDecoder;
});

const jpeg2000 = wasmCodec('JPEG 2000', (frame) => jpeg2000FrameSize(frame), async () => {
  const module = await import('@cornerstonejs/codec-openjpeg/decodewasmjs');
  return (await module.default(quiet())).J2KDecoder;
});

const htj2kCodec = wasmCodec('HTJ2K', (frame) => jpeg2000FrameSize(frame), async () => {
  const module = await import('@cornerstonejs/codec-openjph/wasmjs');
  return (await module.default(quiet())).HTJ2KDecoder;
});

/**
 * High-throughput JPEG 2000 (JPEG 2000 part 15, OpenJPH), unsigned samples only. The decoder says
 * whether a frame is signed, and reads back signed frames of its own library's encoder, but no
 * encoder of another build at hand writes one to check it against: OpenJPH's command line (0.9.0,
 * Debian's openjph-tools) reads signed raw samples without their sign (−2048 becomes 63488, past 12
 * bits) and writes negative samples back as 0. Such frames are refused rather than read as they might be.
 */
const htj2k: Codec = {
  ...htj2kCodec,
  async decode(frame, layout) {
    if (layout.signed) throw unsupportedImage('DICOM HTJ2K pixel data with signed samples is not read; send it uncompressed or as JPEG 2000');
    return htj2kCodec.decode(frame, layout);
  },
};

/**
 * The size in a JPEG 2000 codestream's SIZ segment, which follows its SOC marker (FF4F FF51); a JP2
 * file's boxes before the codestream are skipped. Throws if there is none.
 */
export function jpeg2000FrameSize(frame: Uint8Array): CodestreamSize {
  const start = Buffer.from(frame.buffer, frame.byteOffset, Math.min(frame.length, 4096)).indexOf(SOC_SIZ);
  if (start < 0 || start + 42 > frame.length) throw new Error('no JPEG 2000 codestream header');
  const siz = new DataView(frame.buffer, frame.byteOffset + start + 4);
  // Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, four tile fields, Csiz: the image runs from the offsets to the sizes.
  const width = siz.getUint32(4) - siz.getUint32(12);
  const height = siz.getUint32(8) - siz.getUint32(16);
  return { width, height, components: siz.getUint16(36) };
}

const SOC_SIZ = Buffer.from([0xff, 0x4f, 0xff, 0x51]);

/** Start-of-frame markers: JPEG's SOF0–SOF15 (but DHT, JPG and DAC, which share the range) and JPEG-LS's SOF55. */
const START_OF_FRAME = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf, 0xf7]);

/** The size in a JPEG or JPEG-LS frame header, found by walking the marker segments after SOI; throws if there is none. */
export function jpegFrameSize(frame: Uint8Array): CodestreamSize {
  const at = (i: number) => frame[i] ?? 0;
  if (at(0) !== 0xff || at(1) !== 0xd8) throw new Error('no JPEG start-of-image marker');
  let pos = 2;
  while (pos + 9 < frame.length) {
    while (at(pos) === 0xff && at(pos + 1) === 0xff) pos++; // fill bytes
    if (at(pos) !== 0xff) break;
    const marker = at(pos + 1);
    if (START_OF_FRAME.has(marker)) return { precision: at(pos + 4), height: (at(pos + 5) << 8) | at(pos + 6), width: (at(pos + 7) << 8) | at(pos + 8), components: at(pos + 9) };
    pos += 2 + ((at(pos + 2) << 8) | at(pos + 3));
  }
  throw new Error('no JPEG frame header');
}

const jpegLossless: Codec = {
  name: 'JPEG lossless',
  declaredSize: (frame) => jpegFrameSize(frame),
  async decode(frame, layout) {
    // jpeg-lossless-decoder-js 2.1 reads colour of 8 bits only (of 16, it gives the first component alone).
    if ((layout.samples ?? 1) !== 1 && layout.bitsAllocated === 16) return ijgJpeg.decode(frame, layout);
    const { Decoder } = await import('jpeg-lossless-decoder-js');
    const decoder = new Decoder();
    const copy = withTrailingFill(frame);
    const samples = decoder.decode(copy.buffer, 0, copy.length, layout.bitsAllocated / 8);
    checkLayout(decoder.xDim, decoder.yDim, decoder.numComp, samples.BYTES_PER_ELEMENT, layout);
    return littleEndianBytes(samples);
  },
};

/**
 * A copy of a JPEG lossless frame, with its own buffer, and two zero bytes between the last entropy-coded
 * byte and the end-of-image marker. jpeg-lossless-decoder-js 2.1 gives 0 for the last pixel when that
 * pixel's Huffman code ends in the byte before the marker (it sees the marker first); bits after the last
 * pixel are never read as pixels, so the fill changes nothing else.
 */
function withTrailingFill(frame: Uint8Array): Uint8Array<ArrayBuffer> {
  const end = endOfImage(frame);
  if (end === undefined) return new Uint8Array(frame);
  const copy = new Uint8Array(end + 2);
  copy.set(frame.subarray(0, end - 2));
  copy.set([0, 0, 0xff, 0xd9], end - 2);
  return copy;
}

/** Where a JPEG frame ends: just after its end-of-image marker (FFD9), before DICOM's padding; undefined without one. */
function endOfImage(frame: Uint8Array): number | undefined {
  let end = frame.length;
  while (end > 2 && frame[end - 1] === 0) end--; // DICOM pads a fragment to an even length
  return frame[end - 2] === 0xff && frame[end - 1] === 0xd9 ? end : undefined;
}

/**
 * The IJG libjpeg that DCMTK builds for 12 and 16 bits, in WebAssembly (dcmjs-codecs): it reads JPEG
 * extended of 12 bits (process 4, `dcmcjpeg +ee`), which sharp's libjpeg-turbo does not, and JPEG
 * lossless colour of 16 bits, which jpeg-lossless-decoder-js does not. Its samples are given as the
 * frame holds them (no colour conversion). Its module is compiled on first use, once per thread; after
 * a frame that fails it is dropped and compiled anew, as the failed frame's buffers are left in its memory.
 */
const ijgJpeg: Codec = {
  name: 'JPEG extended',
  declaredSize: (frame) => jpegFrameSize(frame),
  async decode(frame, layout) {
    // libjpeg only warns of data that stops early and fills the rest of the image with grey.
    if (endOfImage(frame) === undefined) throw new ImageDecodeError('DICOM JPEG frame is truncated: it stops before its end-of-image marker');
    const { Context, NativeCodecs } = (await import('dcmjs-codecs')).default;
    ijgReady ??= NativeCodecs.initializeAsync();
    await ijgReady;
    const samples = layout.samples ?? 1;
    const context = new Context({
      width: layout.width,
      height: layout.height,
      bitsAllocated: 16,
      bitsStored: jpegFrameSize(frame).precision ?? 16,
      samplesPerPixel: samples,
      pixelRepresentation: layout.signed ? 1 : 0,
      planarConfiguration: 0,
      photometricInterpretation: samples === 1 ? 'MONOCHROME2' : 'RGB',
      encodedBuffer: frame,
    });
    let decoded: Uint8Array;
    try {
      decoded = NativeCodecs.decodeJpeg(context, { convertColorspaceToRgb: false }).getDecodedBuffer() ?? new Uint8Array(0);
    } catch (error) {
      NativeCodecs.release();
      ijgReady = undefined;
      // Its message names where libjpeg stopped: `JpegDecoder12::ErrorExit::<libjpeg's message>`.
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(message.replace(/^(\w+::)+/, ''));
    }
    const expected = layout.width * layout.height * samples * 2;
    if (decoded.length !== expected) throw new ImageDecodeError(`DICOM JPEG frame decoded to ${decoded.length} bytes; its header declares ${expected}`);
    return new Uint8Array(decoded);
  },
};
let ijgReady: Promise<void> | undefined;

const rle: Codec = {
  name: 'RLE lossless',
  async decode(frame, layout) {
    return Promise.resolve(decodeRle(frame, layout));
  },
};

/** The compressed transfer syntaxes read, by UID. */
const CODECS: Record<string, Codec> = {
  '1.2.840.10008.1.2.4.57': jpegLossless,
  '1.2.840.10008.1.2.4.70': jpegLossless,
  '1.2.840.10008.1.2.4.80': jpegLs,
  '1.2.840.10008.1.2.4.81': jpegLs,
  '1.2.840.10008.1.2.4.90': jpeg2000,
  '1.2.840.10008.1.2.4.91': jpeg2000,
  '1.2.840.10008.1.2.4.201': htj2k,
  '1.2.840.10008.1.2.4.202': htj2k,
  '1.2.840.10008.1.2.4.203': htj2k,
  '1.2.840.10008.1.2.5': rle,
};

/** Lossy JPEG, baseline and extended: sharp reads 8-bit frames, `decompressJpeg12` 12-bit ones (extended only). */
export const LOSSY_JPEG = new Set(['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51']);

/** Whether a grey frame in this transfer syntax can be decompressed here. */
export function isDecompressible(transferSyntax: string): boolean {
  return Object.hasOwn(CODECS, transferSyntax);
}

/**
 * Decompresses one frame (JPEG lossless, JPEG-LS, JPEG 2000, HTJ2K or RLE) into its stored samples,
 * one or two bytes each (as `bitsAllocated` says), little endian, unmasked: the caller masks them to
 * BitsStored and reads the sign as for uncompressed pixel data. A colour frame's samples come
 * interleaved (R G B per pixel), whatever Planar Configuration says.
 */
export async function decompressFrame(transferSyntax: string, frame: Uint8Array, layout: FrameLayout): Promise<Uint8Array> {
  const codec = CODECS[transferSyntax];
  if (!codec) throw new ImageDecodeError(`DICOM transfer syntax ${transferSyntax} has no decoder`);
  return decodeWith(codec, frame, layout);
}

/** Decompresses a 12-bit lossy JPEG frame (JPEG extended) into its 16-bit samples, as `decompressFrame` gives them. */
export async function decompressJpeg12(frame: Uint8Array, layout: FrameLayout): Promise<Uint8Array> {
  return decodeWith(ijgJpeg, frame, layout);
}

async function decodeWith(codec: Codec, frame: Uint8Array, layout: FrameLayout): Promise<Uint8Array> {
  try {
    const declared = codec.declaredSize?.(frame);
    if (declared) checkLayout(declared.width, declared.height, declared.components, undefined, layout);
    return await codec.decode(frame, layout);
  } catch (error) {
    if (error instanceof ImageDecodeError) throw error;
    // The WebAssembly decoders throw numbers (exception pointers) or strings, not errors.
    const reason = error instanceof Error ? `: ${error.message}` : '';
    throw new ImageDecodeError(`DICOM ${codec.name} pixel data cannot be decoded${reason}`);
  }
}

/** Refuses a frame whose size, components or (once decoded) sample size differ from the header's. */
function checkLayout(width: number, height: number, components: number, bytesPerSample: number | undefined, layout: FrameLayout): void {
  if (width !== layout.width || height !== layout.height) {
    throw new ImageDecodeError(`DICOM compressed frame is ${width}×${height}, the header says ${layout.width}×${layout.height}`);
  }
  const samples = layout.samples ?? 1;
  if (components !== samples) throw new ImageDecodeError(`DICOM compressed frame has ${components} components, the header says ${samples}`);
  if (bytesPerSample !== undefined && bytesPerSample !== layout.bitsAllocated / 8) {
    throw new ImageDecodeError(`DICOM compressed frame has ${8 * bytesPerSample}-bit samples, the header says ${layout.bitsAllocated}`);
  }
}

function littleEndianBytes(samples: Uint8Array | Uint16Array): Uint8Array {
  if (samples instanceof Uint8Array) return samples;
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < samples.length; i++) view.setUint16(2 * i, samples[i] as number, true);
  return bytes;
}

/**
 * RLE lossless (DICOM PS3.5 annex G): a header of 16 little-endian 32-bit words (the number of
 * segments, then each segment's offset), then one PackBits segment per byte of a sample, the most
 * significant byte first. Decoded here: it is a few lines of PackBits, and the npm packages that read it
 * come as parts of whole DICOM viewers.
 */
export function decodeRle(frame: Uint8Array, layout: FrameLayout): Uint8Array {
  const bytesPerSample = layout.bitsAllocated / 8;
  const samples = layout.samples ?? 1;
  const count = layout.width * layout.height;
  if (frame.length < 64) throw new ImageDecodeError(`DICOM RLE frame is ${frame.length} bytes, shorter than its 64-byte header`);
  const header = new DataView(frame.buffer, frame.byteOffset, 64);
  const segments = header.getUint32(0, true);
  if (segments !== samples * bytesPerSample) {
    const image = samples === 1 ? 'a grey image' : `an image of ${samples} samples`;
    throw new ImageDecodeError(`DICOM RLE frame has ${segments} segments; ${image} of ${layout.bitsAllocated} bits has ${samples * bytesPerSample}`);
  }
  const out = new Uint8Array(count * samples * bytesPerSample);
  for (let s = 0; s < segments; s++) {
    const start = header.getUint32(4 + 4 * s, true);
    const end = s + 1 < segments ? header.getUint32(8 + 4 * s, true) : frame.length;
    if (start < 64 || end > frame.length || start > end) throw new ImageDecodeError(`DICOM RLE segment ${s + 1} lies outside the frame`);
    // Segments come sample by sample (R, G, B), each most significant byte first: segment s holds byte
    // (bytesPerSample - 1 - s % bytesPerSample) of sample floor(s / bytesPerSample), written interleaved.
    const sample = Math.floor(s / bytesPerSample);
    const byte = bytesPerSample - 1 - (s % bytesPerSample);
    unpackBits(frame.subarray(start, end), out, sample * bytesPerSample + byte, samples * bytesPerSample, count, s + 1);
  }
  return out;
}

function unpackBits(segment: Uint8Array, out: Uint8Array, first: number, stride: number, count: number, index: number): void {
  let written = 0;
  let at = 0;
  const put = (value: number) => {
    if (written < count) out[first + stride * written] = value;
    written++;
  };
  while (at < segment.length && written < count) {
    const n = (segment[at++] as number) << 24 >> 24;
    if (n >= 0) {
      if (at + n + 1 > segment.length) break;
      for (let i = 0; i <= n; i++) put(segment[at++] as number);
    } else if (n !== -128) {
      if (at >= segment.length) break;
      const value = segment[at++] as number;
      for (let i = 0; i < 1 - n; i++) put(value);
    }
  }
  if (written < count) throw new ImageDecodeError(`DICOM RLE segment ${index} is truncated: ${written} of ${count} bytes`);
}
