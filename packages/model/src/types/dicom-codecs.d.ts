// The parts of the DICOM codec packages that btd uses; the packages ship no type declarations.

interface WasmCodecFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}

/** Where an Emscripten module writes what C code prints. */
interface EmscriptenOutput {
  print?: (text: string) => void;
  printErr?: (text: string) => void;
}

interface WasmFrameDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): WasmCodecFrameInfo;
  delete(): void;
}

declare module '@cornerstonejs/codec-charls/decodewasmjs' {
  const factory: (options?: EmscriptenOutput) => Promise<{ JpegLSDecoder: new () => WasmFrameDecoder }>;
  export default factory;
}

declare module '@cornerstonejs/codec-openjpeg/decodewasmjs' {
  const factory: (options?: EmscriptenOutput) => Promise<{ J2KDecoder: new () => WasmFrameDecoder }>;
  export default factory;
}

declare module '@cornerstonejs/codec-openjph/wasmjs' {
  const factory: (options?: EmscriptenOutput) => Promise<{ HTJ2KDecoder: new () => WasmFrameDecoder }>;
  export default factory;
}

declare module 'jpeg-lossless-decoder-js' {
  export class Decoder {
    decode(buffer: ArrayBuffer, offset: number, length: number, numBytes?: number): Uint8Array | Uint16Array;
    xDim: number;
    yDim: number;
    numComp: number;
  }
}
