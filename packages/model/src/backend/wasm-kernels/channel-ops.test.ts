import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileWat } from '../../../../../scripts/compile-wasm.js';
import { initBackend } from '../init-backend.js';
import { CHANNEL_OPS_WASM } from './channel-ops-wasm.js';
import { affine, affine2, batchToInner, channelMoments, gradientSums, reluGradient, simdChannels } from './channel-ops.js';

function values(n: number, seed: number, offset = 0): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 1.5 + Math.cos(i * 0.011 * seed) + offset);
}

/** Runs `f` on the wasm backend with tensors of the given values, then frees everything. */
function withTensors<T>(shapes: number[][], seeds: number[], f: (backend: BackendWasm, ...t: tf.Tensor[]) => T, offset = 0): T {
  const tensors = shapes.map((shape, i) => tf.tensor(values(shape.reduce((a, b) => a * b, 1), seeds[i]!, offset), shape));
  try {
    return f(tf.backend() as BackendWasm, ...tensors);
  } finally {
    tf.dispose(tensors);
  }
}

function read(backend: BackendWasm, info: tf.TensorInfo): Float32Array {
  const out = (backend.typedArrayFromHeap(info) as Float32Array).slice();
  backend.disposeData(info.dataId);
  return out;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(expected[i]!)));
  }
}

// Rows that fill no block, exactly one block (256), and several blocks with a short last one.
const shapes = [[3, 5, 4], [2, 8, 16, 4], [1, 37, 19, 12], [3, 12, 12, 32]].map((shape) => ({ shape }));

describe('channel-ops.wat kernels on the wasm heap', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('is the compiled form of channel-ops.wat (npm run wasm)', async () => {
    expect(Buffer.from(CHANNEL_OPS_WASM, 'base64').equals(await compileWat())).toBe(true);
  });

  it('takes float32 tensors whose channels are a multiple of 4 only', () => {
    const info = (shape: number[], dtype: tf.DataType = 'float32') => ({ dataId: {}, shape, dtype });
    expect(simdChannels(info([2, 8]))).toBe(8);
    expect(simdChannels(info([2, 6]))).toBeUndefined();
    expect(simdChannels(info([2, 8], 'int32'))).toBeUndefined();
    expect(simdChannels(info([]))).toBeUndefined();
  });

  it.each(shapes)('computes per-channel moments like a float64 loop: $shape', ({ shape }) => {
    // An offset of 1000 makes the naive sum-of-squares formula lose every digit in float32.
    const { mean, variance } = withTensors([shape], [1], (backend, x) => channelMoments(backend, x!), 1000);
    const x = values(shape.reduce((a, b) => a * b, 1), 1, 1000);
    const c = shape[shape.length - 1]!;
    const rows = x.length / c;
    for (let j = 0; j < c; j++) {
      let m = 0;
      for (let r = 0; r < rows; r++) m += x[r * c + j]!;
      m /= rows;
      let v = 0;
      for (let r = 0; r < rows; r++) v += (x[r * c + j]! - m) ** 2;
      expect(mean[j]).toBeCloseTo(m, 3);
      expect(Math.abs(variance[j]! - v / rows)).toBeLessThan(1e-3 * (v / rows));
    }
  });

  it.each(shapes)('sums dy and dy·(x − centre) per channel: $shape', ({ shape }) => {
    const c = shape[shape.length - 1]!;
    const centre = Array.from({ length: c }, (_, j) => j * 0.25 - 1);
    const { sumDy, sumDyX } = withTensors([shape, shape], [2, 3], (backend, dy, x) => gradientSums(backend, dy!, x!, centre));
    const n = shape.reduce((a, b) => a * b, 1);
    const [dy, x] = [values(n, 2), values(n, 3)];
    const expected = [new Float64Array(c), new Float64Array(c)] as const;
    for (let i = 0; i < n; i++) {
      expected[0][i % c]! += dy[i]!;
      expected[1][i % c]! += dy[i]! * (x[i]! - centre[i % c]!);
    }
    expectClose(sumDy, expected[0], 1e-4);
    expectClose(sumDyX, expected[1], 1e-4);
  });

  it.each(shapes)('applies per-channel affine maps of one and two tensors: $shape', ({ shape }) => {
    const c = shape[shape.length - 1]!;
    const [a, b, k] = [1, 2, 3].map((s) => Array.from({ length: c }, (_, j) => Math.sin(j + s)));
    const n = shape.reduce((p, q) => p * q, 1);
    const [dy, x] = [values(n, 4), values(n, 5)];
    const one = withTensors([shape], [5], (backend, xt) => read(backend, affine(backend, xt!, a!, b!)));
    expectClose(one, Array.from(x, (v, i) => v * a![i % c]! + b![i % c]!), 1e-6);
    const two = withTensors([shape, shape], [4, 5], (backend, dyt, xt) => read(backend, affine2(backend, dyt!, xt!, a!, b!, k!)));
    expectClose(two, Array.from(x, (v, i) => dy[i]! * a![i % c]! + v * b![i % c]! + k![i % c]!), 1e-6);
  });

  it('passes dy where x is positive, for any length', () => {
    for (const n of [1, 7, 8, 1001]) {
      const out = withTensors([[n], [n]], [6, 7], (backend, dy, x) => read(backend, reluGradient(backend, dy!, x!)));
      const [dy, x] = [values(n, 6), values(n, 7)];
      expect(Array.from(out)).toEqual(Array.from(x, (v, i) => (v > 0 ? dy[i]! : 0)));
    }
  });

  it.each([{ shape: [2, 3, 4, 5] }, { shape: [3, 1, 7, 4] }])('moves the batch axis inside: $shape to [H, W, N, C]', ({ shape }) => {
    const [n, h, w, c] = shape as [number, number, number, number];
    const out = withTensors([shape], [8], (backend, x) => read(backend, batchToInner(backend, x!)));
    const x = values(n * h * w * c, 8);
    const expected = new Float32Array(x.length);
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < h * w; p++) {
        for (let j = 0; j < c; j++) expected[(p * n + b) * c + j] = x[(b * h * w + p) * c + j]!;
      }
    }
    expect(Array.from(out)).toEqual(Array.from(expected));
  });

  it('frees every temporary it allocates', () => {
    const before = tf.backend().numDataIds();
    withTensors([[4, 6, 8], [4, 6, 8]], [1, 2], (backend, dy, x) => {
      channelMoments(backend, x!);
      gradientSums(backend, dy!, x!, new Float64Array(8));
      backend.disposeData(affine(backend, x!, new Float64Array(8), new Float64Array(8)).dataId);
      backend.disposeData(affine2(backend, dy!, x!, new Float64Array(8), new Float64Array(8), new Float64Array(8)).dataId);
      backend.disposeData(reluGradient(backend, dy!, x!).dataId);
    });
    expect(tf.backend().numDataIds()).toBe(before);
  });
});
