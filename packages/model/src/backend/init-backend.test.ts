import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { getBackendInfo, initBackend } from './init-backend.js';

describe('initBackend', () => {
  it('falls back to wasm when tfjs-node is not installed, once per process', async () => {
    expect(getBackendInfo()).toBeUndefined();
    const first = initBackend();
    const second = initBackend({ prefer: 'cpu' });
    const info = await first;
    expect(await second).toBe(info);
    expect(info).toEqual({ name: 'wasm', simd: true, threads: 1 });
    expect(getBackendInfo()).toBe(info);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('registers the training kernels wasm lacks', async () => {
    await initBackend();
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined();
    const grad = tf.tidy(() => {
      const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
      return tf.grad((w: tf.Tensor) => tf.conv2d(x, w as tf.Tensor4D, 1, 'valid').sum())(tf.ones([3, 3, 1, 1]));
    });
    expect(Array.from(await grad.data())).toEqual(new Array(9).fill(4));
    grad.dispose();
  });
});
