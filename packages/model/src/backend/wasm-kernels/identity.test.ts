import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';

describe('Identity on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('shares data: a clone outlives its source and keeps its values', () => {
    const backend = tf.backend();
    const dataIds = backend.numDataIds();
    const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const y = tf.clone(x);
    expect(backend.numDataIds()).toBe(dataIds + 1);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
    expect(y.shape).toEqual([2, 2]);
    y.dispose();
    expect(backend.numDataIds()).toBe(dataIds);
  });

  it('copies strings, and operations on a clone leave the source untouched', () => {
    const s = tf.tensor1d(['a', 'b'], 'string');
    const t = tf.clone(s);
    s.dispose();
    expect(t.arraySync()).toEqual(['a', 'b']);
    t.dispose();
    const v = tf.variable(tf.tensor1d([1, 2, 3]));
    const snapshot = tf.clone(v);
    v.assign(tf.tensor1d([7, 8, 9]));
    expect(Array.from(snapshot.dataSync())).toEqual([1, 2, 3]);
    expect(Array.from(v.dataSync())).toEqual([7, 8, 9]);
    tf.dispose([snapshot, v]);
  });

  it('keeps gradients that save their inputs correct and leak-free', async () => {
    const run = (): Float32Array =>
      tf.tidy(() => tf.grad((t: tf.Tensor) => tf.relu(t).mul(t).sum())(tf.linspace(-1, 1, 9)).dataSync() as Float32Array);
    const points = tf.linspace(-1, 1, 9);
    const expected = Array.from(points.dataSync()).map((v) => (v > 0 ? 2 * v : 0));
    points.dispose();
    Array.from(run()).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6));
    run();
    const before = { ...tf.memory(), dataIds: tf.backend().numDataIds() };
    for (let i = 0; i < 10; i++) run();
    expect({ ...tf.memory(), dataIds: tf.backend().numDataIds() }).toEqual(before);
  });
});
