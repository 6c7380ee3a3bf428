import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { swapOuterAndInnerAxes } from './heap-transpose.js';

type HeapTranspose = (backend: BackendWasm, x: tf.TensorInfo) => tf.TensorInfo;

/** Runs a heap transpose on `x` and hands the result to the engine as a tensor. */
function run(transpose: HeapTranspose, x: tf.Tensor): tf.Tensor {
  const backend = tf.backend() as BackendWasm;
  const info = transpose(backend, x);
  return tf.engine().makeTensorFromTensorInfo(info);
}

describe('the heap transpose on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  const shapes: [number, number, number, number][] = [
    [2, 3, 4, 5],
    [1, 7, 7, 1],
    [32, 6, 5, 16],
    [3, 1, 1, 9],
  ];

  it.each(shapes)('swaps the outer and inner axes of [%i, %i, %i, %i] as perm [3, 1, 2, 0] does', (a, b, c, d) => {
    const x = tf.range(0, a * b * c * d).reshape([a, b, c, d]);
    const got = run(swapOuterAndInnerAxes, x);
    const expected = tf.transpose(x, [3, 1, 2, 0]);
    expect(got.shape).toEqual([d, b, c, a]);
    expect(Array.from(got.dataSync())).toEqual(Array.from(expected.dataSync()));
    tf.dispose([x, got, expected]);
  });

  it('refuses tensors that are not 4-D float32', () => {
    const backend = tf.backend() as BackendWasm;
    const ints = tf.zeros([2, 2, 2, 2], 'int32');
    const flat = tf.zeros([4]);
    expect(() => swapOuterAndInnerAxes(backend, ints)).toThrow(/4-D float32/);
    expect(() => swapOuterAndInnerAxes(backend, flat)).toThrow(/4-D float32/);
    tf.dispose([ints, flat]);
  });
});
