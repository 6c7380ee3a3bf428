import * as tf from '@tensorflow/tfjs';
import { registerWasmKernel, runStockKernel, type WasmKernelArgs } from './kernel-utils.js';

/** How an output is made of whole copies of blocks of x; see {@link repeatPattern}. */
export interface RepeatPattern {
  /** Blocks of x, one after another. */
  outer: number;
  /** Values per block. */
  inner: number;
  /** Copies of each block, side by side. */
  repeats: number;
}

/**
 * The pattern when x is repeated only along a run of axes where it has size 1: x of shape
 * [1, 1, 1, C] tiled by [N, H, W, 1] (the batch-norm gradient) is one block of C repeated
 * N·H·W times; [N, 1, 1, C] tiled by [1, H, W, 1] (the gradient of global average pooling) is
 * N blocks of C, each repeated H·W times. Undefined for any other pattern.
 */
export function repeatPattern(shape: readonly number[], reps: readonly number[]): RepeatPattern | undefined {
  const tiled = reps.flatMap((r, i) => (r !== 1 ? [i] : []));
  const first = tiled[0] ?? reps.length;
  const last = tiled[tiled.length - 1] ?? reps.length - 1;
  let repeats = 1;
  for (let i = first; i <= last; i++) {
    if (shape[i] !== 1) return undefined;
    repeats *= reps[i]!;
  }
  const product = (axes: readonly number[]) => axes.reduce((n, d) => n * d, 1);
  return { outer: product(shape.slice(0, first)), inner: product(shape.slice(last + 1)), repeats };
}

/**
 * Tile. The stock wasm kernel computes a source index per output element, which made the
 * batch-norm gradient's tile of a per-channel vector to the activation shape about a third
 * of a training step. When the output is whole copies of blocks of x, each block is filled by
 * doubling copies (memmove) on the wasm heap instead; other patterns use the stock kernel.
 */
export function tile(args: WasmKernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: tf.TensorInfo };
  const { reps } = attrs as unknown as tf.TileAttrs;
  const pattern = repeatPattern(x.shape, reps);
  if (pattern === undefined || x.dtype === 'string' || x.shape.length !== reps.length) {
    return runStockKernel(tf.Tile, args);
  }
  const { outer, inner, repeats } = pattern;
  const out = backend.makeOutput(x.shape.map((d, i) => d * reps[i]!), x.dtype);
  // Views of the heap are taken after the allocation, which may grow (and detach) it.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const block = inner * repeats;
  for (let o = 0; o < outer; o++) {
    const start = o * block;
    dst.set(src.subarray(o * inner, (o + 1) * inner), start);
    for (let filled = inner; filled < block; filled *= 2) {
      dst.copyWithin(start + filled, start, start + Math.min(filled, block - filled));
    }
  }
  return out;
}

export function registerTile(): void {
  registerWasmKernel(tf.Tile, tile);
}
