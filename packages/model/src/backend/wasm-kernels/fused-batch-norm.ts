import * as tf from '@tensorflow/tfjs';
import { affine, simdChannels } from './channel-ops.js';
import { disposeAll, registerWasmKernel, runStockKernel, runWasmKernel, type WasmKernelArgs } from './kernel-utils.js';

/** Whether `t` holds one value per channel of the last axis (shape [C] or [1, …, 1, C]). */
function isPerChannel(t: tf.TensorInfo | undefined, channels: number): boolean {
  if (t === undefined) return true;
  const { shape } = t;
  return t.dtype === 'float32' && shape[shape.length - 1] === channels && shape.slice(0, -1).every((d) => d === 1);
}

type Statistics = Record<'mean' | 'variance', tf.TensorInfo> & Partial<Record<'offset' | 'scale', tf.TensorInfo>>;

/** The per-channel factor a = scale / sqrt(variance + ε) and shift b = offset − mean·a. */
function factors(backend: WasmKernelArgs['backend'], stats: Statistics, epsilon: number, channels: number): { a: Float64Array; b: Float64Array } {
  const heap = (t: tf.TensorInfo | undefined) => (t === undefined ? undefined : (backend.typedArrayFromHeap(t) as Float32Array));
  const [m, v, o, s] = [heap(stats.mean)!, heap(stats.variance)!, heap(stats.offset), heap(stats.scale)];
  const a = new Float64Array(channels);
  const b = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    a[c] = (s?.[c] ?? 1) / Math.sqrt((v[c] as number) + epsilon);
    b[c] = (o?.[c] ?? 0) - (m[c] as number) * (a[c] as number);
  }
  return { a, b };
}

/**
 * FusedBatchNorm (batch normalisation with given statistics), for per-channel statistics on the
 * last axis: the per-channel factor a = scale / sqrt(variance + ε) and shift b = offset − mean·a
 * are computed once, then y = x·a + b in one pass (channel-ops.wat) when the channels are a
 * multiple of 4, else by the backend's broadcasting Multiply and Add. The stock kernel works out
 * the square root and division per element, about twice as slow; other shapes use it.
 */
export function fusedBatchNorm(args: WasmKernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, mean, variance, offset, scale } = inputs as Record<'x' | 'mean' | 'variance', tf.TensorInfo> & Partial<Record<'offset' | 'scale', tf.TensorInfo>>;
  const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
  const channels = x.shape[x.shape.length - 1] as number;
  if (x.dtype !== 'float32' || x.shape.length === 0 || ![mean, variance, offset, scale].every((t) => isPerChannel(t, channels))) {
    return runStockKernel(tf.FusedBatchNorm, args);
  }
  const { a, b } = factors(backend, { mean, variance, offset, scale }, varianceEpsilon, channels);
  if (simdChannels(x) !== undefined) return affine(backend, x, a, b);
  const factor = backend.makeOutput([channels], 'float32');
  const shift = backend.makeOutput([channels], 'float32');
  // Views of the heap are taken after the allocations, which may grow (and detach) it.
  (backend.typedArrayFromHeap(factor) as Float32Array).set(a);
  (backend.typedArrayFromHeap(shift) as Float32Array).set(b);
  const scaled = runWasmKernel(tf.Multiply, backend, { a: x, b: factor });
  const out = runWasmKernel(tf.Add, backend, { a: scaled, b: shift });
  disposeAll(backend, factor, shift, scaled);
  return out;
}

export function registerFusedBatchNorm(): void {
  registerWasmKernel(tf.FusedBatchNorm, fusedBatchNorm);
}
