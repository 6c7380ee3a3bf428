import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { leadingAxesCount } from './reduce-leading-axes.js';

interface Case { shape: number[]; axis: number | number[]; keepDims: boolean }

const cases: Case[] = [
  { shape: [4, 7, 6, 5], axis: [0, 1, 2], keepDims: false },
  { shape: [4, 7, 6, 5], axis: [2, 0, 1], keepDims: true },
  { shape: [3, 9, 4], axis: 0, keepDims: false },
  { shape: [3, 9, 4], axis: [-3, -2], keepDims: true },
  { shape: [4, 7, 6, 5], axis: [1, 2], keepDims: false },
  { shape: [4, 7, 6, 5], axis: [0, 1, 2, 3], keepDims: false },
  { shape: [6, 5], axis: -1, keepDims: false },
];

/** Sum or mean by the definition, in double precision. */
function reference(values: Float32Array, shape: number[], axis: number | number[], meanOf: boolean): Float64Array {
  const axes = new Set(tf.util.parseAxisParam(axis, shape));
  const outShape = shape.filter((_, i) => !axes.has(i));
  const out = new Float64Array(Math.max(1, outShape.reduce((a, b) => a * b, 1)));
  const counts = new Float64Array(out.length);
  const strides = tf.util.computeStrides(shape);
  for (let flat = 0; flat < values.length; flat++) {
    let outIndex = 0;
    let rest = flat;
    shape.forEach((_, i) => {
      const coord = i < strides.length ? Math.floor(rest / strides[i]!) : rest;
      rest -= i < strides.length ? coord * strides[i]! : coord;
      if (!axes.has(i)) outIndex = outIndex * shape[i]! + coord;
    });
    out[outIndex]! += values[flat]!;
    counts[outIndex]! += 1;
  }
  return meanOf ? out.map((v, i) => v / counts[i]!) : out;
}

describe('Sum and Mean over leading axes on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('recognises leading-axes reductions only', () => {
    expect(leadingAxesCount([0, 1, 2], [2, 3, 4, 5])).toBe(3);
    expect(leadingAxesCount([2, 1, 0, 1], [2, 3, 4, 5])).toBe(3);
    expect(leadingAxesCount(-4, [2, 3, 4, 5])).toBe(1);
    expect(leadingAxesCount([1, 2], [2, 3, 4, 5])).toBeUndefined();
    expect(leadingAxesCount([0, 1, 2, 3], [2, 3, 4, 5])).toBeUndefined();
  });

  it.each(cases)('match the definition: $shape over $axis, keepDims $keepDims', ({ shape, axis, keepDims }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37) * 3 + 0.5);
    tf.tidy(() => {
      const x = tf.tensor(values, shape);
      for (const [op, meanOf] of [[tf.sum, false], [tf.mean, true]] as const) {
        const out = op(x, axis, keepDims);
        const expected = reference(values, shape, axis, meanOf);
        const axes = tf.util.parseAxisParam(axis, shape);
        const expectedShape = keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
        expect(out.shape).toEqual(expectedShape);
        const actual = out.dataSync();
        expected.forEach((v, i) => expect(Math.abs(actual[i]! - v)).toBeLessThan(1e-4 * Math.max(1, Math.abs(v))));
      }
    });
  });

  it('leaves int32 sums exact and leaks nothing', () => {
    const run = (): number[] => tf.tidy(() => Array.from(tf.sum(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32'), 0).dataSync()));
    expect(run()).toEqual([9, 12]);
    const x = tf.randomNormal([8, 5, 5, 3]);
    const reduce = (): void => {
      tf.tidy(() => {
        tf.moments(x, [0, 1, 2]).variance.dataSync();
        tf.grad((t: tf.Tensor) => tf.mean(t, [0, 1, 2]).square().sum())(x).dataSync();
      });
    };
    reduce();
    const before = { ...tf.memory(), dataIds: tf.backend().numDataIds() };
    for (let i = 0; i < 20; i++) reduce();
    expect({ ...tf.memory(), dataIds: tf.backend().numDataIds() }).toEqual(before);
    x.dispose();
  });
});
