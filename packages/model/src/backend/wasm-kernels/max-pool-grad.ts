import * as tf from '@tensorflow/tfjs';
import { maxPoolGradient2x2, simdChannels } from './channel-ops.js';
import { registerWasmKernel, runStockKernel, type WasmKernelArgs } from './kernel-utils.js';

type Shape4 = [number, number, number, number];

/**
 * Whether the pooling windows tile the input without overlap or padding (the 2×2, stride 2,
 * VALID pooling of the model, and any k×k pooling with stride k that fits the input).
 */
export function isNonOverlappingPool(info: tf.backend_util.Conv2DInfo): boolean {
  const { padInfo } = info;
  return info.dilationHeight === 1 && info.dilationWidth === 1
    && info.strideHeight === info.filterHeight && info.strideWidth === info.filterWidth
    && padInfo.top === 0 && padInfo.left === 0
    && info.outHeight * info.strideHeight <= info.inHeight
    && info.outWidth * info.strideWidth <= info.inWidth;
}

/**
 * MaxPoolGrad. For non-overlapping windows every input pixel belongs to at most one window,
 * so one pass over the heap suffices: each window's gradient goes to its maximum, the first
 * one in row-major order when several are equal (as in the stock and cpu kernels; ties are
 * common after ReLU). 2×2 windows with channels in fours (the model's) run in SIMD
 * WebAssembly (channel-ops.wat); other pooling configurations use the stock kernel.
 */
export function maxPoolGrad(args: WasmKernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as Shape4, filterSize, strides, 1, pad, dimRoundingMode);
  if (input.dtype !== 'float32' || dy.dtype !== 'float32' || !isNonOverlappingPool(info)) {
    return runStockKernel(tf.MaxPoolGrad, args);
  }
  if (info.filterHeight === 2 && info.filterWidth === 2 && simdChannels(input) !== undefined) {
    return maxPoolGradient2x2(backend, input, dy);
  }
  const dx = backend.makeOutput(input.shape, 'float32');
  // Views of the heap are taken after the allocation, which may grow (and detach) it.
  const dxValues = backend.typedArrayFromHeap(dx) as Float32Array;
  dxValues.fill(0);
  scatterToMaxima(
    backend.typedArrayFromHeap(input) as Float32Array,
    backend.typedArrayFromHeap(dy) as Float32Array,
    dxValues,
    info,
  );
  return dx;
}

function scatterToMaxima(x: Float32Array, dy: Float32Array, dx: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  if (info.filterHeight === 2 && info.filterWidth === 2) {
    scatterToMaxima2x2(x, dy, dx, info);
    return;
  }
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, filterHeight: fh, filterWidth: fw } = info;
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  const rowStride = inWidth * c;
  let g = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const corner = ((n * inHeight + oy * fh) * inWidth + ox * fw) * c;
        for (let ch = 0; ch < c; ch++) {
          best[ch] = x[corner + ch]!;
          where[ch] = corner + ch;
        }
        for (let ky = 0; ky < fh; ky++) {
          for (let kx = ky === 0 ? 1 : 0; kx < fw; kx++) {
            const base = corner + ky * rowStride + kx * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch]!;
              if (v > best[ch]!) {
                best[ch] = v;
                where[ch] = base + ch;
              }
            }
          }
        }
        for (let ch = 0; ch < c; ch++) dx[where[ch]!]! += dy[g++]!;
      }
    }
  }
}

/** The 2×2 case of {@link scatterToMaxima} (the model's pooling), unrolled: same result, ties included. */
function scatterToMaxima2x2(x: Float32Array, dy: Float32Array, dx: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth } = info;
  const rowStride = inWidth * c;
  let g = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const a = ((n * inHeight + oy * 2) * inWidth + ox * 2) * c;
        const b = a + c;
        const d = a + rowStride;
        const e = d + c;
        for (let ch = 0; ch < c; ch++, g++) {
          let where = a + ch;
          let best = x[where]!;
          if (x[b + ch]! > best) {
            where = b + ch;
            best = x[where]!;
          }
          if (x[d + ch]! > best) {
            where = d + ch;
            best = x[where]!;
          }
          if (x[e + ch]! > best) where = e + ch;
          dx[where]! += dy[g]!;
        }
      }
    }
  }
}

export function registerMaxPoolGrad(): void {
  registerWasmKernel(tf.MaxPoolGrad, maxPoolGrad);
}
