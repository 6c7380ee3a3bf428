import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { CHANNEL_OPS_WASM } from './channel-ops-wasm.js';

/**
 * The hand-written SIMD kernels of channel-ops.wat, run on the wasm backend's heap: per-channel
 * sums and affine maps (batch normalisation in training), the ReLU and 2×2 max-pool gradients,
 * and the layout copies of the filter gradient (batch axis inside, im2col rows).
 */

/** The exports of channel-ops.wat; every pointer is a byte offset into the backend's heap. */
interface ChannelOpsExports {
  channel_sums(x: number, rows: number, c: number, shift: number, out: number, block: number): void;
  gradient_sums(dy: number, x: number, rows: number, c: number, shift: number, out: number, block: number): void;
  affine(x: number, rows: number, c: number, a: number, b: number, out: number): void;
  affine2(dy: number, x: number, rows: number, c: number, a: number, b: number, k: number, out: number): void;
  relu_grad(dy: number, x: number, n: number, out: number): void;
  swap_leading_axes(x: number, n: number, hw: number, bytes: number, out: number): void;
  swap_outer_inner(x: number, a: number, middle: number, d: number, out: number): void;
  max_pool_grad_2x2(x: number, dy: number, dx: number, n: number, h: number, w: number, c: number, ho: number, wo: number): void;
  im2col_rows(xT: number, h: number, w: number, n: number, cin: number, kh: number, kw: number, top: number, left: number, wo: number, y0: number, rows: number, out: number): void;
}

/** Rows summed in float32 before a block's sums join the float64 totals. */
const BLOCK_ROWS = 256;

/** The slice of the WebAssembly JavaScript API used here (Node's types do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: { env: { memory: object } }) => { exports: unknown };
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const compiled = new Module(Buffer.from(CHANNEL_OPS_WASM, 'base64'));
/** One instance per backend heap (its WebAssembly.Memory), importing that memory. */
const instances = new WeakMap<object, ChannelOpsExports>();

function channelOps(backend: BackendWasm): ChannelOpsExports {
  const memory = (backend.wasm as unknown as { asm: { memory: object } }).asm.memory;
  let ops = instances.get(memory);
  if (ops === undefined) {
    ops = new Instance(compiled, { env: { memory } }).exports as ChannelOpsExports;
    instances.set(memory, ops);
  }
  return ops;
}

function pointer(backend: BackendWasm, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset;
}

/** Channels on the last axis of a float32 tensor, when the kernels here can take it (a multiple of 4). */
export function simdChannels(t: tf.TensorInfo): number | undefined {
  const c = t.shape[t.shape.length - 1];
  return t.dtype === 'float32' && t.shape.length > 0 && c !== undefined && c > 0 && c % 4 === 0 ? c : undefined;
}

function rowsOf(t: tf.TensorInfo, c: number): number {
  return t.shape.reduce((n, d) => n * d, 1) / c;
}

/** A per-channel vector on the heap (freed by the caller). */
function upload(backend: BackendWasm, values: ArrayLike<number>): tf.TensorInfo {
  const info = backend.makeOutput([values.length], 'float32');
  (backend.typedArrayFromHeap(info) as Float32Array).set(values);
  return info;
}

/** Adds up the per-block sums a kernel wrote (two vectors of c per block) in float64. */
function totals(backend: BackendWasm, blocks: tf.TensorInfo, c: number): [Float64Array, Float64Array] {
  const values = backend.typedArrayFromHeap(blocks) as Float32Array;
  const first = new Float64Array(c);
  const second = new Float64Array(c);
  for (let base = 0; base < values.length; base += 2 * c) {
    for (let j = 0; j < c; j++) {
      first[j]! += values[base + j]!;
      second[j]! += values[base + c + j]!;
    }
  }
  return [first, second];
}

function blockSums(backend: BackendWasm, rows: number, c: number, run: (out: number) => void): [Float64Array, Float64Array] {
  const blocks = backend.makeOutput([Math.ceil(rows / BLOCK_ROWS), 2 * c], 'float32');
  try {
    run(pointer(backend, blocks));
    return totals(backend, blocks, c);
  } finally {
    backend.disposeData(blocks.dataId);
  }
}

/**
 * Per-channel mean and (biased) variance of x over every axis but the last, in one pass. The
 * sums are taken around the first row, which keeps them small whatever the channels' means.
 */
export function channelMoments(backend: BackendWasm, x: tf.TensorInfo): { mean: Float64Array; variance: Float64Array } {
  const c = simdChannels(x)!;
  const rows = rowsOf(x, c);
  const firstRow = Float64Array.from((backend.typedArrayFromHeap(x) as Float32Array).subarray(0, c));
  const shift = upload(backend, firstRow);
  try {
    const ops = channelOps(backend);
    const [sum, squares] = blockSums(backend, rows, c, (out) => ops.channel_sums(pointer(backend, x), rows, c, pointer(backend, shift), out, BLOCK_ROWS));
    const mean = new Float64Array(c);
    const variance = new Float64Array(c);
    for (let j = 0; j < c; j++) {
      const d = sum[j]! / rows;
      mean[j] = firstRow[j]! + d;
      variance[j] = Math.max(0, squares[j]! / rows - d * d);
    }
    return { mean, variance };
  } finally {
    backend.disposeData(shift.dataId);
  }
}

/** Per channel, the sum of dy and the sum of dy · (x − centre), in one pass over both. */
export function gradientSums(backend: BackendWasm, dy: tf.TensorInfo, x: tf.TensorInfo, centre: ArrayLike<number>): { sumDy: Float64Array; sumDyX: Float64Array } {
  const c = simdChannels(x)!;
  const rows = rowsOf(x, c);
  const shift = upload(backend, centre);
  try {
    const ops = channelOps(backend);
    const [sumDy, sumDyX] = blockSums(backend, rows, c, (out) =>
      ops.gradient_sums(pointer(backend, dy), pointer(backend, x), rows, c, pointer(backend, shift), out, BLOCK_ROWS));
    return { sumDy, sumDyX };
  } finally {
    backend.disposeData(shift.dataId);
  }
}

/** x · a + b with a and b per channel (last axis); a new tensor shaped like x. */
export function affine(backend: BackendWasm, x: tf.TensorInfo, a: ArrayLike<number>, b: ArrayLike<number>): tf.TensorInfo {
  const c = simdChannels(x)!;
  const out = backend.makeOutput([...x.shape], 'float32');
  const [av, bv] = [upload(backend, a), upload(backend, b)];
  channelOps(backend).affine(pointer(backend, x), rowsOf(x, c), c, pointer(backend, av), pointer(backend, bv), pointer(backend, out));
  backend.disposeData(av.dataId);
  backend.disposeData(bv.dataId);
  return out;
}

/** dy · a + x · b + k with a, b and k per channel; dy and x of one shape. */
export function affine2(backend: BackendWasm, dy: tf.TensorInfo, x: tf.TensorInfo, a: ArrayLike<number>, b: ArrayLike<number>, k: ArrayLike<number>): tf.TensorInfo {
  const c = simdChannels(x)!;
  const out = backend.makeOutput([...x.shape], 'float32');
  const vectors = [upload(backend, a), upload(backend, b), upload(backend, k)];
  const [av, bv, kv] = vectors.map((v) => pointer(backend, v)) as [number, number, number];
  channelOps(backend).affine2(pointer(backend, dy), pointer(backend, x), rowsOf(x, c), c, av, bv, kv, pointer(backend, out));
  for (const v of vectors) backend.disposeData(v.dataId);
  return out;
}

/** dy where x > 0, else 0: the ReLU gradient in one pass. */
export function reluGradient(backend: BackendWasm, dy: tf.TensorInfo, x: tf.TensorInfo): tf.TensorInfo {
  const out = backend.makeOutput([...x.shape], 'float32');
  const n = x.shape.reduce((m, d) => m * d, 1);
  channelOps(backend).relu_grad(pointer(backend, dy), pointer(backend, x), n, pointer(backend, out));
  return out;
}

/** x of shape [N, H, W, C] as [H, W, N, C] (float32, any C), by block copies on the heap. */
export function batchToInner(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const out = backend.makeOutput([h, w, n, c], 'float32');
  channelOps(backend).swap_leading_axes(pointer(backend, x), n, h * w, c * 4, pointer(backend, out));
  return out;
}

/** Where a stride-1 convolution's window sits: kernel size, padding before, output width. */
export interface Window {
  kh: number;
  kw: number;
  top: number;
  left: number;
  wo: number;
}

/**
 * Output rows y0 .. y0 + rows − 1 of the transposed im2col matrix of a stride-1 convolution, as
 * [kh·kw·Cin, rows·wo·N]: row (i, j, ci) holds, for each output position (y, x) and image b,
 * the input value under tap (i, j), or 0 in the padding. xT is the input as [Cin, H, W, N].
 */
export function im2colRows(backend: BackendWasm, xT: tf.TensorInfo, window: Window, y0: number, rows: number): tf.TensorInfo {
  const [cin, h, w, n] = xT.shape as [number, number, number, number];
  const { kh, kw, top, left, wo } = window;
  const out = backend.makeOutput([kh * kw * cin, rows * wo * n], 'float32');
  channelOps(backend).im2col_rows(pointer(backend, xT), h, w, n, cin, kh, kw, top, left, wo, y0, rows, pointer(backend, out));
  return out;
}

/**
 * Gradient of a 2×2, stride-2, unpadded max pool of x ([N, H, W, C], C a multiple of 4, with
 * ho = ⌊H/2⌋ and wo = ⌊W/2⌋ output rows and columns): dy goes to each window's first maximum.
 */
export function maxPoolGradient2x2(backend: BackendWasm, x: tf.TensorInfo, dy: tf.TensorInfo): tf.TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const [, ho, wo] = dy.shape as [number, number, number, number];
  const out = backend.makeOutput([...x.shape], 'float32');
  channelOps(backend).max_pool_grad_2x2(pointer(backend, x), pointer(backend, dy), pointer(backend, out), n, h, w, c, ho, wo);
  return out;
}

/** out[j][m][i] = x[i][m][j] for x viewed as [a, middle, d], as a [d, middle, a] tensor of `shape`. */
export function swapOuterInner(backend: BackendWasm, x: tf.TensorInfo, a: number, middle: number, d: number, shape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  channelOps(backend).swap_outer_inner(pointer(backend, x), a, middle, d, pointer(backend, out));
  return out;
}
