import * as tf from '@tensorflow/tfjs';
import { registerWasmKernel, runStockKernel, runWasmKernel, view, type WasmKernelArgs } from './kernel-utils.js';

/**
 * Number of leading axes `axis` names when it names exactly the first k axes of a rank-r
 * tensor (0 < k < r), as batch normalisation's per-channel sums and means over [N, H, W] do;
 * undefined for any other set of axes.
 */
export function leadingAxes(axis: number | number[], rank: number): number | undefined {
  const list = [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  if (list.length === 0 || list.length >= rank) return undefined;
  return list.every((a, i) => a === i) ? list.length : undefined;
}

/**
 * Sum or mean over the leading axes as one average pooling: x viewed as [1, R, 1, C] pooled
 * by an R×1 window (XNNPACK's pooling walks the channels innermost), times R for the sum.
 * The stock wasm reductions first transpose the reduced axes to the end, which made the
 * batch-norm statistics and their gradients about a tenth of a training step; the pooling
 * runs five to ten times faster. (A matrix product with a row of ones is fast only for data
 * it has seen before: XNNPACK packs its right operand on first use.) Other reductions use the
 * stock kernels.
 */
function reduceLeading(kernelName: typeof tf.Sum | typeof tf.Mean, args: WasmKernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: tf.TensorInfo };
  const { axis, keepDims } = attrs as unknown as tf.SumAttrs;
  const k = leadingAxes(axis, x.shape.length);
  if (k === undefined || x.dtype !== 'float32') return runStockKernel(kernelName, args);
  const rows = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
  const trailing = x.shape.slice(k);
  const cols = trailing.reduce((a, b) => a * b, 1);
  const pooled = runWasmKernel(tf.AvgPool, backend, { x: view(x, [1, rows, 1, cols]) }, {
    filterSize: [rows, 1],
    strides: [1, 1],
    pad: 'valid',
    dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap);
  if (kernelName === tf.Sum) {
    const values = backend.typedArrayFromHeap(pooled) as Float32Array;
    for (let i = 0; i < values.length; i++) values[i] = (values[i] as number) * rows;
  }
  return view(pooled, keepDims ? [...x.shape.slice(0, k).map(() => 1), ...trailing] : trailing);
}

export function registerLeadingAxisReductions(): void {
  registerWasmKernel(tf.Sum, (args) => reduceLeading(tf.Sum, args));
  registerWasmKernel(tf.Mean, (args) => reduceLeading(tf.Mean, args));
}
