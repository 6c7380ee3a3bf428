import * as tf from '@tensorflow/tfjs';
import { registerWasmKernel, runStockKernel, type WasmKernelArgs } from './kernel-utils.js';

/**
 * Number of whole copies of x that make up the output when x is only repeated along leading
 * axes where it has size 1 (x of shape [1, 1, 1, C] tiled by [N, H, W, 1], as the batch-norm
 * gradient does); undefined for any other pattern.
 */
export function outerRepeats(shape: readonly number[], reps: readonly number[]): number | undefined {
  let last = -1;
  for (let i = 0; i < reps.length; i++) if (reps[i]! !== 1) last = i;
  let repeats = 1;
  for (let i = 0; i <= last; i++) {
    if (shape[i] !== 1) return undefined;
    repeats *= reps[i]!;
  }
  return repeats;
}

/**
 * Tile. The stock wasm kernel computes a source index per output element, which made the
 * batch-norm gradient's tile of a per-channel vector to the activation shape about a third
 * of a training step. When the output is whole copies of x, it is filled by doubling copies
 * (memmove) on the wasm heap instead; other patterns use the stock kernel.
 */
export function tile(args: WasmKernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: tf.TensorInfo };
  const { reps } = attrs as unknown as tf.TileAttrs;
  const repeats = outerRepeats(x.shape, reps);
  if (repeats === undefined || x.dtype === 'string' || x.shape.length !== reps.length) {
    return runStockKernel(tf.Tile, args);
  }
  const out = backend.makeOutput(x.shape.map((d, i) => d * reps[i]!), x.dtype);
  // Views of the heap are taken after the allocation, which may grow (and detach) it.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  dst.set(src);
  for (let filled = src.length; filled < dst.length; filled *= 2) {
    dst.copyWithin(filled, 0, Math.min(filled, dst.length - filled));
  }
  return out;
}

export function registerTile(): void {
  registerWasmKernel(tf.Tile, tile);
}
