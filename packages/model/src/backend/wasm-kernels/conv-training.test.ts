import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { registerConvTraining, unregisterConvTraining } from './index.js';

function values(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.73 + seed)), shape);
}

/** Two stacked convolutions without bias; the loss's gradients for both kernels, and the outputs. */
function twoConvs(): { model: tf.LayersModel; x: tf.Tensor } {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [9, 8, 1], filters: 4, kernelSize: 3, padding: 'same', useBias: false }),
      tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }),
    ],
  });
  model.setWeights([values([3, 3, 1, 4], 1), values([3, 3, 4, 3], 2)]);
  return { model, x: values([2, 9, 8, 1], 3) };
}

function gradients(model: tf.LayersModel, x: tf.Tensor): Float32Array[] {
  return tf.tidy(() => {
    const kernels = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, kernels);
    return [value.dataSync() as Float32Array, ...kernels.map((k) => grads[k.name]!.dataSync() as Float32Array)];
  });
}

describe('Conv2D layers in training on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('give the fused operation’s loss and kernel gradients', () => {
    const { model, x } = twoConvs();
    unregisterConvTraining();
    const expected = gradients(model, x);
    registerConvTraining();
    registerConvTraining();
    const actual = gradients(model, x);
    actual.forEach((a, i) => a.forEach((v, j) => expect(Math.abs(v - expected[i]![j]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(expected[i]![j]!)))));
    x.dispose();
  });

  it('no longer compute a gradient for the image itself, and leave other convolutions fused', async () => {
    const { model, x } = twoConvs();
    const kernelsOfStep = async (): Promise<string[]> => (await tf.profile(() => { gradients(model, x); })).kernels.map((k) => k.name);
    unregisterConvTraining();
    // Fused: each layer's gradient computes an input gradient, the first layer's for the image.
    expect((await kernelsOfStep()).filter((k) => k === tf.Conv2DBackpropInput)).toHaveLength(2);
    registerConvTraining();
    expect((await kernelsOfStep()).filter((k) => k === tf.Conv2DBackpropInput)).toHaveLength(1);
    const withBias = tf.layers.conv2d({ filters: 2, kernelSize: 3, activation: 'relu' });
    const profile = await tf.profile(() => tf.tidy(() => withBias.apply(x, { training: true }) as tf.Tensor));
    expect(profile.kernelNames).toContain(tf.FusedConv2D);
    x.dispose();
  });
});
