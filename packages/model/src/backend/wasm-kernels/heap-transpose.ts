import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/*
 * Two transposes of float32 tensors written as loops over the wasm heap. The backend's own
 * Transpose walks every output element through a generic index computation; for the layouts
 * the convolution filter gradient needs, these loops are 2–4× faster (bench/training-kernels.js).
 */

/** Float32 tensor of `shape` filled from `x` by `fill(source, target)`. */
function transposed(backend: BackendWasm, x: tf.TensorInfo, shape: number[], fill: (src: Float32Array, dst: Float32Array) => void): tf.TensorInfo {
  if (x.dtype !== 'float32') throw new Error(`heap transpose supports float32 only, got ${x.dtype}`);
  const out = backend.makeOutput(shape, 'float32');
  // Views of the heap are taken after the allocation, which may grow (and detach) it.
  fill(backend.typedArrayFromHeap(x) as Float32Array, backend.typedArrayFromHeap(out) as Float32Array);
  return out;
}

/** x viewed as [a, s, b] becomes [b, s, a] (e.g. NHWC → CHWN), returned with `shape`. */
export function swapOuterAxes(backend: BackendWasm, x: tf.TensorInfo, [a, s, b]: [number, number, number], shape: number[]): tf.TensorInfo {
  return transposed(backend, x, shape, (src, dst) => {
    const stride = s * b;
    for (let k = 0; k < s; k++) {
      for (let j = 0; j < b; j++) {
        const o = (j * s + k) * a;
        for (let m = 0, i = k * b + j; m < a; m++, i += stride) dst[o + m] = src[i] as number;
      }
    }
  });
}

/** x viewed as [a, s, b] becomes [s, a, b] (e.g. NHWC → HWNC), returned with `shape`. */
export function swapLeadingAxes(backend: BackendWasm, x: tf.TensorInfo, [a, s, b]: [number, number, number], shape: number[]): tf.TensorInfo {
  return transposed(backend, x, shape, (src, dst) => {
    for (let k = 0; k < s; k++) {
      for (let m = 0; m < a; m++) {
        const i = (m * s + k) * b;
        const o = (k * a + m) * b;
        for (let j = 0; j < b; j++) dst[o + j] = src[i + j] as number;
      }
    }
  });
}
