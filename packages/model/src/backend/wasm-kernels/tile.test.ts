import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { registerBatchNormGradient, unregisterBatchNormGradient } from './index.js';
import { repeatPattern } from './tile.js';

/** Tile by the definition: out[i0, i1, ...] = x[i0 % d0, i1 % d1, ...]. */
function referenceTile(values: ArrayLike<number>, shape: number[], reps: number[]): number[] {
  const outShape = shape.map((d, i) => d * reps[i]!);
  const size = outShape.reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let flat = 0; flat < size; flat++) {
    let rest = flat;
    let src = 0;
    let stride = 1;
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      const coord = rest % outShape[axis]!;
      rest = Math.floor(rest / outShape[axis]!);
      src += (coord % shape[axis]!) * stride;
      stride *= shape[axis]!;
    }
    out.push(values[src]!);
  }
  return out;
}

describe('Tile on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('recognises whole-copy patterns only', () => {
    expect(repeatPattern([1, 1, 1, 16], [32, 96, 96, 1])).toEqual({ outer: 1, inner: 16, repeats: 32 * 96 * 96 });
    expect(repeatPattern([32, 1, 1, 128], [1, 12, 12, 1])).toEqual({ outer: 32, inner: 128, repeats: 144 });
    expect(repeatPattern([1, 5, 3], [4, 1, 1])).toEqual({ outer: 1, inner: 15, repeats: 4 });
    expect(repeatPattern([2, 3], [1, 1])).toEqual({ outer: 6, inner: 1, repeats: 1 });
    expect(repeatPattern([2, 3], [2, 1])).toBeUndefined();
    expect(repeatPattern([1, 3], [2, 2])).toBeUndefined();
    expect(repeatPattern([2, 1, 3], [1, 4, 2])).toBeUndefined();
  });

  const cases: { shape: number[]; reps: number[]; dtype: 'float32' | 'int32' | 'bool' }[] = [
    { shape: [1, 1, 1, 16], reps: [3, 5, 7, 1], dtype: 'float32' },
    { shape: [1, 1, 1, 5], reps: [2, 3, 3, 1], dtype: 'int32' },
    { shape: [1, 4, 3], reps: [5, 1, 1], dtype: 'bool' },
    { shape: [2, 3], reps: [1, 1], dtype: 'float32' },
    { shape: [2, 3, 2], reps: [2, 1, 3], dtype: 'float32' },
    { shape: [1, 3], reps: [2, 2], dtype: 'int32' },
    { shape: [3, 1, 1, 4], reps: [1, 5, 2, 1], dtype: 'float32' },
    { shape: [2, 1, 3], reps: [1, 7, 1], dtype: 'int32' },
  ];

  it.each(cases)('matches the definition for $shape × $reps ($dtype)', ({ shape, reps, dtype }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: size }, (_, i) => (dtype === 'bool' ? i % 2 : i * 1.5 - 3));
    tf.tidy(() => {
      const x = tf.tensor(dtype === 'int32' ? values.map(Math.round) : values, shape, dtype);
      const out = tf.tile(x, reps);
      expect(out.shape).toEqual(shape.map((d, i) => d * reps[i]!));
      expect(out.dtype).toBe(dtype);
      expect(Array.from(out.dataSync())).toEqual(referenceTile(x.dataSync(), shape, reps));
    });
  });

  it('gives the stock batch-norm gradient (which tiles) the cpu backend’s values without leaking', async () => {
    unregisterBatchNormGradient();
    const run = (): Float32Array[] =>
      tf.tidy(() => {
        const x = tf.linspace(-2, 3, 2 * 5 * 6 * 4).reshape([2, 5, 6, 4]).sin();
        const mean = tf.tensor1d([0.1, -0.2, 0.3, 0]);
        const variance = tf.tensor1d([1, 0.5, 2, 0.25]);
        const gamma = tf.tensor1d([1.5, 0.7, 1, -1]);
        const beta = tf.tensor1d([0, 0.5, -0.5, 1]);
        const f = (...t: tf.Tensor[]): tf.Scalar => {
          const [a, m, v, g, b] = t as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
          return tf.batchNorm4d(a, m, v, b, g, 1e-3).square().sum();
        };
        return tf.grads(f)([x, mean, variance, gamma, beta]).map((g) => g.dataSync() as Float32Array);
      });
    await tf.setBackend('cpu');
    const expected = run();
    await tf.setBackend('wasm');
    const actual = run();
    expected.forEach((e, i) => {
      Array.from(e).forEach((v, j) => expect(Math.abs(actual[i]![j]! - v)).toBeLessThan(1e-4 * Math.max(1, Math.abs(v))));
    });
    const before = { ...tf.memory(), dataIds: tf.backend().numDataIds() };
    for (let i = 0; i < 10; i++) run();
    expect({ ...tf.memory(), dataIds: tf.backend().numDataIds() }).toEqual(before);
    registerBatchNormGradient();
  });
});
