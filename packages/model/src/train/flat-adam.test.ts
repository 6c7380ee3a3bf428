import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { createRandom } from '../util/random.js';
import { FlatAdam } from './flat-adam.js';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
});

const random = createRandom(7);
const shapes = [[3, 4], [5]];
const initial = shapes.map((shape) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() - 0.5));
/** Per step: two workers' gradients and their shares of the batch. */
const steps = Array.from({ length: 6 }, () => ({
  grads: [0, 1].map(() => initial.map((w) => Float32Array.from({ length: w.length }, () => (random() - 0.5) * 0.2))),
  shares: [0.625, 0.375],
  lr: 0.01 + random() * 0.01,
}));

function withTfAdam(count: number): Float32Array[] {
  const variables = initial.map((w, k) => tf.variable(tf.tensor(w, shapes[k]), true, `w${k}`));
  const adam = tf.train.adam(0.01);
  for (const step of steps.slice(0, count)) {
    (adam as unknown as { learningRate: number }).learningRate = step.lr;
    tf.tidy(() => {
      const grads = variables.map((v, k) => {
        const g = step.grads[0]![k]!.map((x, i) => x * step.shares[0]! + step.grads[1]![k]![i]! * step.shares[1]!);
        return { name: v.name, tensor: tf.tensor(g, v.shape) };
      });
      adam.applyGradients(grads);
    });
  }
  const out = variables.map((v) => v.dataSync() as Float32Array);
  adam.dispose();
  variables.forEach((v) => v.dispose());
  return out;
}

describe('FlatAdam', () => {
  const variables = shapes.map((shape, k) => ({ name: `w${k}`, size: shape.reduce((a, b) => a * b, 1) }));

  it('moves the weights as tf.train.adam does, with averaged gradients and a changing learning rate', () => {
    const expected = withTfAdam(steps.length);
    const values = initial.map((w) => w.slice());
    const adam = new FlatAdam(variables);
    for (const step of steps) adam.apply(values, step.grads, step.shares, step.lr);
    values.forEach((w, k) => w.forEach((x, i) => expect(x).toBeCloseTo(expected[k]![i]!, 5)));
    expect(values[0]).not.toEqual(initial[0]);
  });

  it('continues identically after its state is saved and restored', async () => {
    const straight = initial.map((w) => w.slice());
    const adam = new FlatAdam(variables);
    for (const step of steps) adam.apply(straight, step.grads, step.shares, step.lr);

    const resumed = initial.map((w) => w.slice());
    const first = new FlatAdam(variables);
    for (const step of steps.slice(0, 3)) first.apply(resumed, step.grads, step.shares, step.lr);
    const saved = await first.getWeights();
    expect(saved.map((s) => s.name)).toEqual(['iter', 'w0/m', 'w1/m', 'w0/v', 'w1/v']);
    const second = new FlatAdam(variables);
    expect(await second.setWeights(saved)).toEqual([]);
    saved.forEach((s) => s.tensor.dispose());
    for (const step of steps.slice(3)) second.apply(resumed, step.grads, step.shares, step.lr);
    expect(resumed).toEqual(straight);
  });

  it('names the variables whose moments a saved state lacks', async () => {
    const adam = new FlatAdam(variables);
    expect(await adam.setWeights([{ name: 'w0/m', tensor: tf.zeros([variables[0]!.size]) }, { name: 'w0/v', tensor: tf.zeros([variables[0]!.size]) }])).toEqual(['w1']);
    expect(await adam.setWeights([{ name: 'w0_1/m', tensor: tf.zeros([variables[0]!.size]) }])).toEqual(['w0', 'w1']);
  });

  it('refuses a saved state of another size', async () => {
    const adam = new FlatAdam(variables);
    await expect(adam.setWeights([{ name: 'w1/m', tensor: tf.zeros([4]) }])).rejects.toThrow(/has 4 values, expected 5/);
  });
});
