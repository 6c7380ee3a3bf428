import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { registerBatchNormTraining, unregisterBatchNormTraining } from './index.js';

interface Outcome {
  y: Float32Array;
  grads: Float32Array[];
  moving: Float32Array[];
}

function values(shape: number[], seed: number, offset = 0): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.61 + seed) * 1.7 + offset), shape);
}

/**
 * One training-mode call of a fresh BatchNormalization layer (fixed weights) on x, and the
 * gradients of sum(relu(y) · w) with respect to x, gamma and beta.
 */
function trainingCall(shape: number[], offset: number): Outcome {
  return tf.tidy(() => {
    const c = shape[shape.length - 1]!;
    const layer = tf.layers.batchNormalization({ momentum: 0.9 });
    layer.build(shape);
    layer.setWeights([values([c], 1), values([c], 2), values([c], 3), values([c], 4, 3)]);
    const [gamma, beta] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = values(shape, 5, offset);
    const w = values(shape, 6);
    let y: tf.Tensor | undefined;
    const { grads } = tf.variableGrads(() => {
      const out = layer.apply(x, { training: true }) as tf.Tensor;
      y = tf.keep(out.clone());
      return tf.sum(tf.mul(tf.relu(out), w)) as tf.Scalar;
    }, [gamma!, beta!]);
    const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.relu(layer.apply(input, { training: true }) as tf.Tensor), w)))(x);
    const moving = layer.getWeights().slice(2).map((t) => t.dataSync() as Float32Array);
    return {
      y: y!.dataSync() as Float32Array,
      grads: [dx.dataSync() as Float32Array, grads[gamma!.name]!.dataSync() as Float32Array, grads[beta!.name]!.dataSync() as Float32Array],
      // Two training calls ran (one per gradient), so the statistics moved twice in both paths.
      moving,
    };
  });
}

function expectClose(actual: Float32Array, expected: Float32Array, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((v, i) => expect(Math.abs(actual[i]! - v)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(v))));
}

function expectSameOutcome(actual: Outcome, expected: Outcome): void {
  expectClose(actual.y, expected.y, 1e-4);
  actual.grads.forEach((g, i) => expectClose(g, expected.grads[i]!, 1e-4));
  actual.moving.forEach((m, i) => expectClose(m, expected.moving[i]!, 1e-4));
}

describe('BatchNormalization in training on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it.each([
    { shape: [4, 6, 5, 8], offset: 0 },
    { shape: [2, 9, 7, 4], offset: 40 },
    { shape: [300, 12], offset: -3 },
    { shape: [3, 5, 5, 6], offset: 0 },
  ])('gives the output, gradients and moving statistics of tf.layers: $shape', ({ shape, offset }) => {
    unregisterBatchNormTraining();
    const expected = trainingCall(shape, offset);
    registerBatchNormTraining();
    registerBatchNormTraining();
    expectSameOutcome(trainingCall(shape, offset), expected);
  });

  it('runs as one operation only where it applies (channels last, a multiple of 4)', async () => {
    registerBatchNormTraining();
    const kernelsOf = async (shape: number[]): Promise<string[]> => {
      const layer = tf.layers.batchNormalization({});
      const x = values(shape, 1);
      const profile = await tf.profile(() => tf.tidy(() => layer.apply(x, { training: true }) as tf.Tensor));
      x.dispose();
      return profile.kernelNames;
    };
    // The stock path computes moments (Mean) and calls FusedBatchNorm; the fused one neither.
    expect(await kernelsOf([2, 4, 4, 8])).not.toContain(tf.FusedBatchNorm);
    expect(await kernelsOf([2, 4, 4, 8])).not.toContain(tf.Mean);
    expect(await kernelsOf([2, 4, 4, 6])).toContain(tf.FusedBatchNorm);
  });

  it('leaves inference and other backends to tf.layers, and keeps no more tensors than it', async () => {
    const x = values([2, 3, 3, 8], 1);
    const growth = (): number => {
      const layer = tf.layers.batchNormalization({});
      tf.tidy(() => layer.apply(x) as tf.Tensor);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(layer.apply(t, { training: true }) as tf.Tensor))(x));
      return tf.memory().numTensors - before;
    };
    unregisterBatchNormTraining();
    const stockGrowth = growth();
    registerBatchNormTraining();
    // tf.layers itself keeps one tensor per training call (the moving statistics' update).
    expect(growth()).toBe(stockGrowth);
    const layer = tf.layers.batchNormalization({});
    const inference = tf.tidy(() => (layer.apply(x) as tf.Tensor).dataSync());
    expectClose(inference as Float32Array, x.dataSync() as Float32Array, 1e-2);
    await tf.setBackend('cpu');
    const onCpu = tf.tidy(() => (layer.apply(tf.tensor(x.dataSync(), x.shape), { training: true }) as tf.Tensor).dataSync());
    await tf.setBackend('wasm');
    const onWasm = tf.tidy(() => (layer.apply(x, { training: true }) as tf.Tensor).dataSync());
    expectClose(onWasm as Float32Array, onCpu as Float32Array, 1e-5);
    x.dispose();
  });
});
