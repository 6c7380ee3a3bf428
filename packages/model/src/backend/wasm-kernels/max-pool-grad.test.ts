import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { getStockWasmKernel } from './index.js';
import { isNonOverlappingPool } from './max-pool-grad.js';

type Shape4 = [number, number, number, number];

/** Values on a coarse grid, half of them clipped to 0 as after ReLU, so that windows have ties. */
function tiedValues(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let s = seed >>> 0;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.max(0, Math.round((s / 2 ** 32) * 8 - 4));
  }
  return out;
}

/** Distinct values (a permutation of 0..size-1, scaled), so that no window has a tie. */
function distinctValues(size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = ((i * 7919) % size) / size;
  return out;
}

interface Case { shape: Shape4; pool: number; stride: number; pad: 'same' | 'valid'; fast: boolean }

const cases: Case[] = [
  { shape: [3, 8, 10, 5], pool: 2, stride: 2, pad: 'valid', fast: true },
  { shape: [2, 9, 7, 3], pool: 2, stride: 2, pad: 'valid', fast: true },
  { shape: [2, 8, 6, 4], pool: 2, stride: 2, pad: 'same', fast: true },
  { shape: [3, 9, 7, 8], pool: 2, stride: 2, pad: 'valid', fast: true },
  { shape: [2, 10, 12, 16], pool: 2, stride: 2, pad: 'valid', fast: true },
  { shape: [2, 9, 9, 2], pool: 3, stride: 3, pad: 'valid', fast: true },
  { shape: [2, 7, 9, 3], pool: 2, stride: 2, pad: 'same', fast: false },
  { shape: [2, 9, 8, 3], pool: 3, stride: 2, pad: 'same', fast: false },
  { shape: [2, 6, 6, 2], pool: 2, stride: 1, pad: 'valid', fast: false },
];

describe('MaxPoolGrad on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it.each(cases)('matches the cpu kernel, ties included: $shape pool $pool/$stride $pad', async (c) => {
    const info = tf.backend_util.computePool2DInfo(c.shape, c.pool, c.stride, 1, c.pad);
    expect(isNonOverlappingPool(info)).toBe(c.fast);
    // The stock wasm kernel, used where windows overlap or are padded, sends a tied window's
    // gradient to its last maximum instead of its first: there, compare on tie-free values.
    const size = c.shape.reduce((a, b) => a * b);
    const xValues = c.fast ? tiedValues(size, c.shape[1] * 13 + c.pool) : distinctValues(size);
    const gradOn = async (backendName: string): Promise<Float32Array> => {
      await tf.setBackend(backendName);
      return tf.tidy(() => {
        const x = tf.tensor4d(xValues, c.shape);
        const f = (t: tf.Tensor): tf.Tensor => tf.maxPool(t as tf.Tensor4D, c.pool, c.stride, c.pad).mul(tf.range(1, info.outChannels + 1));
        return tf.grad(f)(x).dataSync() as Float32Array;
      });
    };
    const expected = await gradOn('cpu');
    const actual = await gradOn('wasm');
    expect(Array.from(actual)).toEqual(Array.from(expected));
  });

  it.each(cases.filter((c) => c.fast))('matches the stock wasm kernel on tie-free values: $shape pool $pool/$stride $pad', (c) => {
    const backend = tf.backend();
    const stock = getStockWasmKernel(tf.MaxPoolGrad)!;
    tf.tidy(() => {
      const x = tf.tensor4d(distinctValues(c.shape.reduce((a, b) => a * b)), c.shape);
      const y = tf.maxPool(x, c.pool, c.stride, c.pad);
      const dy = tf.randomUniform(y.shape, -1, 1, 'float32', 7);
      const attrs = { filterSize: c.pool, strides: c.stride, pad: c.pad };
      const ours = tf.engine().runKernel(tf.MaxPoolGrad, { dy, input: x, output: y }, attrs) as tf.Tensor;
      const theirs = stock.kernelFunc({ inputs: { dy, input: x, output: y }, backend, attrs }) as tf.TensorInfo;
      expect(Array.from(ours.dataSync())).toEqual(Array.from(backend.readSync(theirs.dataId) as Float32Array));
      backend.disposeData(theirs.dataId);
    });
  });

  it('sends a tied window’s gradient to its first maximum, as the cpu kernel does', () => {
    const dx = tf.tidy(() => {
      const x = tf.tensor4d([5, 5, 2, 3, 5, 1, 3, 3], [1, 2, 4, 1]);
      return tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid').sum())(x);
    });
    expect(Array.from(dx.dataSync())).toEqual([1, 0, 0, 1, 0, 0, 0, 0]);
    dx.dispose();
  });

  it('does not leak across repeated calls', () => {
    const x = tf.tensor4d(tiedValues(2 * 8 * 8 * 3, 5), [2, 8, 8, 3]);
    const run = (): void => {
      tf.tidy(() => tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid').sum())(x).dataSync());
    };
    run();
    const before = { ...tf.memory(), dataIds: tf.backend().numDataIds() };
    for (let i = 0; i < 20; i++) run();
    expect({ ...tf.memory(), dataIds: tf.backend().numDataIds() }).toEqual(before);
    x.dispose();
  });
});
