import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { disposeAll, registerWasmKernel, runWasmKernel, view, type WasmKernelArgs } from './kernel-utils.js';

type Shape4 = [number, number, number, number];

/**
 * Input gradient of a 2-D convolution (NHWC, dilation 1), computed by the backend's fast
 * forward convolution: dy (with zeros inserted between its pixels when the stride is above 1)
 * convolved with the filter flipped spatially and with its channel axes swapped, padded by
 * k - 1 - pad so that the result lines up with the forward input.
 */
export function conv2DBackpropInput({ inputs, backend, attrs }: WasmKernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (tf.backend_util.convertConv2DDataFormat(dataFormat) !== 'channelsLast') {
    throw new Error(`Conv2DBackpropInput on wasm supports NHWC only, got dataFormat '${dataFormat}'`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    inputShape as Shape4, filter.shape as Shape4, strides, 1, pad, dimRoundingMode, false, 'channelsLast',
  );
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight, inWidth } = info;
  const dyFull = dilate(backend, dy, sh, sw);
  // dyFull is (Ho - 1) * s + 1 rows of data followed by s - 1 rows of zeros.
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const bottom = inHeight + kh - 1 - dyFull.shape[1]! - top;
  const right = inWidth + kw - 1 - dyFull.shape[2]! - left;

  const swapped = flipAndSwapChannels(backend, filter);
  let dx = runWasmKernel('Conv2D', backend, { x: dyFull, filter: swapped }, {
    strides: [1, 1],
    pad: [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]],
    dilations: [1, 1],
    dataFormat: 'NHWC',
  });
  disposeAll(backend, swapped);
  if (dyFull.dataId !== dy.dataId) disposeAll(backend, dyFull);
  if (dx.shape[1] !== inHeight || dx.shape[2] !== inWidth) {
    // Negative padding: padding larger than the kernel, or input rows the forward pass never read.
    const begin = [0, Math.max(0, -top), Math.max(0, -left), 0];
    const cropped = runWasmKernel('Slice', backend, { x: dx }, { begin, size: [-1, inHeight, inWidth, -1] });
    disposeAll(backend, dx);
    dx = cropped;
  }
  return dx;
}

/**
 * The filter rotated by 180° with its channel axes swapped: out[kh-1-i, kw-1-j, co, ci] =
 * w[i, j, ci, co]. One loop over a few thousand weights; the stock Reverse kernel alone took
 * milliseconds for a 3×3×128×128 filter.
 */
export function flipAndSwapChannels(backend: BackendWasm, filter: tf.TensorInfo): tf.TensorInfo {
  const [kh, kw, ci, co] = filter.shape as Shape4;
  const out = backend.makeOutput([kh, kw, co, ci], filter.dtype);
  // Views of the heap are taken after the allocation, which may grow (and detach) it.
  const w = backend.typedArrayFromHeap(filter);
  const o = backend.typedArrayFromHeap(out);
  const taps = kh * kw;
  for (let t = 0; t < taps; t++) {
    const src = t * ci * co;
    const dst = (taps - 1 - t) * ci * co;
    for (let i = 0; i < ci; i++) {
      for (let j = 0; j < co; j++) o[dst + j * ci + i] = w[src + i * co + j]!;
    }
  }
  return out;
}

/** Inserts s - 1 zeros after every row and column of dy (no copy when both strides are 1). */
function dilate(backend: BackendWasm, dy: tf.TensorInfo, sh: number, sw: number): tf.TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [n, ho, wo, c] = dy.shape as Shape4;
  const spread = runWasmKernel('PadV2', backend, { x: view(dy, [n, ho, 1, wo, 1, c]) }, {
    paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
    constantValue: 0,
  });
  return view(spread, [n, ho * sh, wo * sw, c]);
}

export function registerConv2DBackpropInput(): void {
  registerWasmKernel(tf.Conv2DBackpropInput, conv2DBackpropInput);
}
