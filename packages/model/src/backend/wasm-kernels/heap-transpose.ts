import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Shape4 = [number, number, number, number];

/**
 * `out[d, b, c, a] = x[a, b, c, d]` (perm [3, 1, 2, 0]) for a 4-D float32 tensor, on the wasm
 * heap. The filter gradient needs it for every layer's input. The stock Transpose kernel took
 * a third of the filter gradient of the first 96×96 block with it (32 against 9 ms for a batch
 * of 32 × 96² × 16), as it computes each element's source index on its own; this copies in an
 * order that keeps both sides in cache.
 */
export function swapOuterAndInnerAxes(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  if (x.dtype !== 'float32' || x.shape.length !== 4) {
    throw new Error(`heap transpose needs a 4-D float32 tensor, got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  const [a, b, c, d] = x.shape as Shape4;
  const out = backend.makeOutput([d, b, c, a], 'float32');
  // Views of the heap are taken after the allocation, which may grow (and detach) it.
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const middle = b * c;
  const srcOuterStride = middle * d;
  const dstOuterStride = middle * a;
  // For each position of the middle axes, an [a, d] block becomes a [d, a] block, written one
  // contiguous output row at a time while its a source rows stay in cache.
  for (let m = 0; m < middle; m++) {
    const srcBase = m * d;
    const dstBase = m * a;
    for (let j = 0; j < d; j++) {
      let from = srcBase + j;
      const to = j * dstOuterStride + dstBase;
      for (let i = 0; i < a; i++) {
        dst[to + i] = src[from]!;
        from += srcOuterStride;
      }
    }
  }
  return out;
}
