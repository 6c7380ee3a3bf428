import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { registerBatchNormGradient, unregisterBatchNormGradient } from './index.js';

// TensorFlow.js 4.22 cannot differentiate batchNorm without both scale and offset (it fails
// saving or walking the missing inputs), so every case has both; Keras-style layers always do.
interface Case { label: string; xShape: number[]; statShape: number[] }

const cases: Case[] = [
  { label: 'NHWC, per channel', xShape: [3, 5, 6, 4], statShape: [4] },
  { label: 'NHWC, batch of one, odd sizes', xShape: [1, 9, 11, 3], statShape: [3] },
  { label: '2-D input', xShape: [9, 6], statShape: [6] },
  { label: 'full-shape statistics (stock path)', xShape: [2, 3, 3, 2], statShape: [2, 3, 3, 2] },
];

function valuesFor(shape: number[], seed: number, positive = false): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const v = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 1.7 + seed) * 2);
  return tf.tensor(positive ? v.map((a) => a * a + 0.1) : v, shape);
}

/** Gradients of sum(y · w) with respect to every input of batchNorm, w fixed. */
function batchNormGrads(c: Case): Float32Array[] {
  return tf.tidy(() => {
    const inputs = [valuesFor(c.xShape, 1), valuesFor(c.statShape, 2), valuesFor(c.statShape, 3, true), valuesFor(c.statShape, 4), valuesFor(c.statShape, 5)];
    const weights = valuesFor(c.xShape, 6);
    const f = (...t: tf.Tensor[]): tf.Scalar => {
      const [x, mean, variance, scale, offset] = t as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      return tf.batchNorm(x, mean, variance, offset, scale, 1e-3).mul(weights).sum();
    };
    return tf.grads(f)(inputs).map((g) => g.dataSync() as Float32Array);
  });
}

function expectClose(actual: Float32Array[], expected: Float32Array[]): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => {
    e.forEach((v, j) => expect(Math.abs(actual[i]![j]! - v)).toBeLessThan(1e-4 * Math.max(1, Math.abs(v))));
  });
}

describe('FusedBatchNorm gradient', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it.each(cases)('equals the stock gradient on cpu and wasm: $label', async (c) => {
    unregisterBatchNormGradient();
    await tf.setBackend('cpu');
    const expected = batchNormGrads(c);
    registerBatchNormGradient();
    registerBatchNormGradient();
    expectClose(batchNormGrads(c), expected);
    await tf.setBackend('wasm');
    expectClose(batchNormGrads(c), expected);
  });

  it('trains a BatchNormalization layer without leaking', () => {
    const model = tf.sequential({
      layers: [tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 3, kernelSize: 3 }), tf.layers.batchNormalization(), tf.layers.flatten(), tf.layers.dense({ units: 1 })],
    });
    model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const x = valuesFor([4, 8, 8, 2], 7);
    const y = valuesFor([4, 1], 8);
    const step = async (): Promise<number> => (await model.trainOnBatch(x, y)) as number;
    return (async () => {
      const first = await step();
      const before = { ...tf.memory(), dataIds: tf.backend().numDataIds() };
      let last = first;
      for (let i = 0; i < 10; i++) last = await step();
      expect({ ...tf.memory(), dataIds: tf.backend().numDataIds() }).toEqual(before);
      expect(last).toBeLessThan(first);
      tf.dispose([x, y]);
      model.dispose();
    })();
  });
});
