import * as tf from '@tensorflow/tfjs';
import { disposeAll, registerWasmKernel, runStockKernel, runWasmKernel, view, type WasmKernelArgs } from './kernel-utils.js';

/**
 * How many leading axes a reduction over `axis` covers, when it covers exactly the leading
 * axes and leaves at least one (the batch-norm pattern: [N, H, W, C] reduced over 0, 1, 2);
 * undefined otherwise.
 */
export function leadingAxesCount(axis: number | number[], shape: readonly number[]): number | undefined {
  const axes = [...new Set(tf.util.parseAxisParam(axis, shape as number[]))].sort((a, b) => a - b);
  if (axes.length === 0 || axes.length >= shape.length) return undefined;
  return axes.every((a, i) => a === i) ? axes.length : undefined;
}

/**
 * Sum or mean over the leading axes as a product with a row of ones (or of 1/rows), which
 * the backend runs through XNNPACK. The stock kernels first transpose the reduced axes to
 * the end, which for the batch-norm statistics and gradients costs far more than the sum.
 */
function reduceLeading(args: WasmKernelArgs, kernelName: string, divide: boolean): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: tf.TensorInfo };
  const { axis, keepDims } = attrs as unknown as tf.SumAttrs;
  const count = leadingAxesCount(axis, x.shape);
  if (count === undefined || x.dtype !== 'float32') return runStockKernel(kernelName, args);
  const rest = x.shape.slice(count);
  const rows = tf.util.sizeFromShape(x.shape.slice(0, count));
  const cols = tf.util.sizeFromShape(rest);
  const weights = runWasmKernel('Fill', backend, {}, { shape: [1, 1, rows], value: divide ? 1 / rows : 1, dtype: 'float32' });
  const out = runWasmKernel('BatchMatMul', backend, { a: weights, b: view(x, [1, rows, cols]) }, {
    transposeA: false,
    transposeB: false,
  });
  disposeAll(backend, weights);
  return view(out, keepDims ? [...x.shape.slice(0, count).map(() => 1), ...rest] : rest);
}

export function sum(args: WasmKernelArgs): tf.TensorInfo {
  return reduceLeading(args, tf.Sum, false);
}

export function mean(args: WasmKernelArgs): tf.TensorInfo {
  return reduceLeading(args, tf.Mean, true);
}

export function registerLeadingAxesReductions(): void {
  registerWasmKernel(tf.Sum, sum);
  registerWasmKernel(tf.Mean, mean);
}
