import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { getStockWasmKernel } from './kernel-utils.js';
import { leadingAxes } from './reduce-leading-axes.js';

/** Sum over the first k axes by the definition. */
function referenceSum(values: Float32Array, shape: number[], k: number): Float64Array {
  const cols = shape.slice(k).reduce((a, b) => a * b, 1);
  const out = new Float64Array(cols);
  for (let i = 0; i < values.length; i++) out[i % cols] = (out[i % cols] as number) + (values[i] as number);
  return out;
}

describe('Sum and Mean over leading axes on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('recognises leading-axis reductions only', () => {
    expect(leadingAxes([0, 1, 2], 4)).toBe(3);
    expect(leadingAxes([2, 0, 1], 4)).toBe(3);
    expect(leadingAxes([-4, -3], 4)).toBe(2);
    expect(leadingAxes(0, 2)).toBe(1);
    expect(leadingAxes([0, 1, 2, 3], 4)).toBeUndefined();
    expect(leadingAxes([1, 2], 4)).toBeUndefined();
    expect(leadingAxes([3], 4)).toBeUndefined();
    expect(leadingAxes([], 4)).toBeUndefined();
  });

  const shapes: [number[], number[]][] = [
    [[8, 12, 12, 16], [0, 1, 2]],
    [[3, 5, 7], [0, 1]],
    [[64, 10], [0]],
    [[4, 6, 6, 3], [-4, -3]],
  ];
  for (const [shape, axis] of shapes) {
    for (const keepDims of [false, true]) {
      it(`matches the definition and the stock kernels for ${JSON.stringify(shape)} over ${JSON.stringify(axis)}, keepDims ${keepDims}`, () => {
        const x = tf.randomNormal(shape, 0.5, 2, 'float32', 7);
        const values = x.dataSync() as Float32Array;
        const k = leadingAxes(axis, shape.length)!;
        const expected = referenceSum(values, shape, k);
        const rows = values.length / expected.length;
        const sum = tf.sum(x, axis, keepDims);
        const mean = tf.mean(x, axis, keepDims);
        const outShape = keepDims ? shape.map((d, i) => (i < k ? 1 : d)) : shape.slice(k);
        expect(sum.shape).toEqual(outShape);
        expect(mean.shape).toEqual(outShape);
        const s = sum.dataSync();
        const m = mean.dataSync();
        // float32 accumulation: agree with the float64 definition to a relative 1e-5.
        const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(b)) * Math.sqrt(rows));
        expected.forEach((e, i) => {
          close(s[i] as number, e);
          close(m[i] as number, e / rows);
        });
        const stockSum = getStockWasmKernel(tf.Sum)!;
        const stock = stockSum.kernelFunc({ inputs: { x }, backend: tf.backend(), attrs: { axis, keepDims } }) as tf.TensorInfo;
        const stockValues = tf.engine().makeTensorFromTensorInfo(stock).dataSync();
        stockValues.forEach((v, i) => close(s[i] as number, v));
        tf.dispose([x, sum, mean]);
      });
    }
  }

  it('leaves other reductions and dtypes to the stock kernels', () => {
    const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    expect(Array.from(tf.sum(x, 1).dataSync())).toEqual([6, 15]);
    expect(Array.from(tf.mean(x).dataSync())).toEqual([3.5]);
    const ints = tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32');
    const intSum = tf.sum(ints, 0);
    expect(intSum.dtype).toBe('int32');
    expect(Array.from(intSum.dataSync())).toEqual([4, 6]);
    tf.dispose([x, ints, intSum]);
  });

  it('keeps the tensor count balanced', () => {
    const x = tf.randomNormal([16, 8, 8, 4]);
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    tf.tidy(() => {
      tf.sum(x, [0, 1, 2]).add(tf.mean(x, [0, 1, 2], true).sum());
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytes);
    x.dispose();
  });
});
