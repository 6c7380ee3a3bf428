import * as tf from '@tensorflow/tfjs';
import { disposeAll, registerWasmKernel, runStockKernel, runWasmKernel, type WasmKernelArgs } from './kernel-utils.js';

/** Whether `t` holds one value per channel of the last axis (shape [C] or [1, …, 1, C]). */
function isPerChannel(t: tf.TensorInfo | undefined, channels: number): boolean {
  if (t === undefined) return true;
  const { shape } = t;
  return t.dtype === 'float32' && shape[shape.length - 1] === channels && shape.slice(0, -1).every((d) => d === 1);
}

/**
 * FusedBatchNorm (batch normalisation with given statistics), for per-channel statistics on the
 * last axis: the per-channel factor a = scale / sqrt(variance + ε) and shift b = offset − mean·a
 * are computed once, then y = x·a + b by the backend's broadcasting Multiply and Add. The stock
 * kernel works out the square root and division per element, about twice as slow; other shapes
 * use it.
 */
export function fusedBatchNorm(args: WasmKernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, mean, variance, offset, scale } = inputs as Record<'x' | 'mean' | 'variance', tf.TensorInfo> & Partial<Record<'offset' | 'scale', tf.TensorInfo>>;
  const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
  const channels = x.shape[x.shape.length - 1] as number;
  if (x.dtype !== 'float32' || x.shape.length === 0 || ![mean, variance, offset, scale].every((t) => isPerChannel(t, channels))) {
    return runStockKernel(tf.FusedBatchNorm, args);
  }
  const factor = backend.makeOutput([channels], 'float32');
  const shift = backend.makeOutput([channels], 'float32');
  // Views of the heap are taken after the allocations, which may grow (and detach) it.
  const heap = (t: tf.TensorInfo | undefined) => (t === undefined ? undefined : (backend.typedArrayFromHeap(t) as Float32Array));
  const [m, v, o, s, a, b] = [heap(mean)!, heap(variance)!, heap(offset), heap(scale), heap(factor)!, heap(shift)!];
  for (let c = 0; c < channels; c++) {
    a[c] = (s?.[c] ?? 1) / Math.sqrt((v[c] as number) + varianceEpsilon);
    b[c] = (o?.[c] ?? 0) - (m[c] as number) * (a[c] as number);
  }
  const scaled = runWasmKernel(tf.Multiply, backend, { a: x, b: factor });
  const out = runWasmKernel(tf.Add, backend, { a: scaled, b: shift });
  disposeAll(backend, factor, shift, scaled);
  return out;
}

export function registerFusedBatchNorm(): void {
  registerWasmKernel(tf.FusedBatchNorm, fusedBatchNorm);
}
