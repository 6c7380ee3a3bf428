import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { registerReluGradient, unregisterReluGradient } from './index.js';

const x = [-2, -0, 0, 1e-30, 3, -1e-30, 5, 0.5, -7];

function reluGrad(): number[] {
  return tf.tidy(() => {
    const input = tf.tensor1d(x);
    const dy = tf.tensor1d(x.map((_, i) => i + 1));
    return Array.from(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.relu(t), dy)))(input).dataSync());
  });
}

describe('Relu gradient', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('equals the stock gradient on wasm and cpu, for a length that is not a multiple of 4', async () => {
    unregisterReluGradient();
    const expected = reluGrad();
    expect(expected).toEqual([0, 0, 0, 4, 5, 0, 7, 8, 0]);
    registerReluGradient();
    registerReluGradient();
    expect(reluGrad()).toEqual(expected);
    await tf.setBackend('cpu');
    expect(reluGrad()).toEqual(expected);
    await tf.setBackend('wasm');
  });

  it('frees what it makes', () => {
    registerReluGradient();
    const before = tf.memory().numTensors;
    reluGrad();
    expect(tf.memory().numTensors).toBe(before);
  });
});
