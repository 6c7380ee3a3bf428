import * as tf from '@tensorflow/tfjs';
import { batchToInner } from './channel-ops.js';
import { filterGradientByMatMul } from './filter-gradient-matmul.js';
import { swapOuterAndInnerAxes } from './heap-transpose.js';
import { disposeAll, registerWasmKernel, runWasmKernel, view, type WasmKernelArgs } from './kernel-utils.js';

type Shape4 = [number, number, number, number];

/**
 * Output channels from which the matrix products win. Building the im2col rows writes nine
 * copies of x for a 3×3 kernel, whatever the output channels, while the products' work grows
 * with them: with 16 (the 96×96 layers) the copying cost as much as it saved, and two threads
 * training side by side were held up by it (memory bandwidth); with 32 and more it wins.
 */
const MATMUL_MIN_OUT_CHANNELS = 32;

/**
 * Filter gradient of a 2-D convolution (NHWC, dilation 1). With stride 1 and enough output
 * channels, by matrix products ({@link filterGradientByMatMul}); otherwise by the backend's fast
 * forward convolution: with x as [Cin, H, W, N] and dy as a filter [Ho, Wo, N, Cout], a VALID
 * convolution dilated by the forward stride gives
 * dW[i, j, ci, co] = sum over n, y, x of xPadded[n, y*s + i, x*s + j, ci] * dy[n, y, x, co].
 */
export function conv2DBackpropFilter({ inputs, backend, attrs }: WasmKernelArgs): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (tf.backend_util.convertConv2DDataFormat(dataFormat) !== 'channelsLast') {
    throw new Error(`Conv2DBackpropFilter on wasm supports NHWC only, got dataFormat '${dataFormat}'`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as Shape4, filterShape as Shape4, strides, 1, pad, dimRoundingMode, false, 'channelsLast',
  );
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo } = info;
  if (sh === 1 && sw === 1 && x.dtype === 'float32' && info.outChannels >= MATMUL_MIN_OUT_CHANNELS) {
    return filterGradientByMatMul(backend, x, dy, info);
  }
  const { top, left } = info.padInfo;
  // Pad only as far as the last window reaches; any rows or columns beyond it are cropped below.
  const bottom = Math.max(0, kh + (ho - 1) * sh - info.inHeight - top);
  const right = Math.max(0, kw + (wo - 1) * sw - info.inWidth - left);

  const xT = swapOuterAndInnerAxes(backend, x);
  const dyT = batchToInner(backend, dy);
  let grad = runWasmKernel('Conv2D', backend, { x: xT, filter: dyT }, {
    strides: [1, 1],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
    dilations: [sh, sw],
    dataFormat: 'NHWC',
  });
  disposeAll(backend, xT, dyT);
  if (grad.shape[1] !== kh || grad.shape[2] !== kw) {
    const cropped = runWasmKernel('Slice', backend, { x: grad }, { begin: [0, 0, 0, 0], size: [-1, kh, kw, -1] });
    disposeAll(backend, grad);
    grad = cropped;
  }
  const out = runWasmKernel('Transpose', backend, { x: grad }, { perm: [1, 2, 0, 3] });
  disposeAll(backend, grad);
  return view(out, [kh, kw, info.inChannels, info.outChannels]);
}

export function registerConv2DBackpropFilter(): void {
  registerWasmKernel(tf.Conv2DBackpropFilter, conv2DBackpropFilter);
}
