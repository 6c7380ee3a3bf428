import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { registerReductionGradients, unregisterReductionGradients } from './reduction-grads.js';

interface Case { label: string; shape: number[]; axis: number | number[]; keepDims: boolean }

const cases: Case[] = [
  { label: 'batch-norm moments (NHW of NHWC)', shape: [3, 4, 5, 2], axis: [0, 1, 2], keepDims: false },
  { label: 'global average pooling (HW)', shape: [2, 3, 3, 4], axis: [1, 2], keepDims: false },
  { label: 'last axis, kept', shape: [4, 6], axis: -1, keepDims: true },
  { label: 'every axis', shape: [3, 5], axis: [0, 1], keepDims: false },
];

/** Gradients of sum(reduce(x) · w) for Sum and Mean, w fixed so that every output counts differently. */
function gradients(c: Case): Float32Array[] {
  return tf.tidy(() => {
    const size = c.shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor(Float32Array.from({ length: size }, (_, i) => Math.sin(i)), c.shape);
    return [tf.sum, tf.mean].map((reduce) => {
      const f = (t: tf.Tensor) => {
        const y = reduce(t, c.axis, c.keepDims);
        const w = tf.tensor(Float32Array.from({ length: y.size }, (_, i) => i + 1), y.shape);
        return y.mul(w).sum() as tf.Scalar;
      };
      return tf.grad(f)(x).dataSync() as Float32Array;
    });
  });
}

describe('Sum and Mean gradients', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it.each(cases)('equal the stock gradients on cpu and wasm: $label', async (c) => {
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      unregisterReductionGradients();
      const expected = gradients(c);
      registerReductionGradients();
      const actual = gradients(c);
      expected.forEach((e, k) => e.forEach((v, i) => expect(actual[k]![i]).toBeCloseTo(v, 6)));
      // The weights make a position's gradient depend on which output it feeds.
      if (c.label !== 'every axis') expect(new Set(actual[0]).size).toBeGreaterThan(1);
    }
    await tf.setBackend('wasm');
  });

  it('registers idempotently and restores the stock gradients', () => {
    unregisterReductionGradients();
    const stock = tf.getGradient(tf.Mean);
    registerReductionGradients();
    registerReductionGradients();
    expect(tf.getGradient(tf.Mean)).not.toBe(stock);
    unregisterReductionGradients();
    expect(tf.getGradient(tf.Mean)).toBe(stock);
    registerReductionGradients();
  });
});
