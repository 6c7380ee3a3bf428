import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { getStockWasmKernel } from './index.js';

interface Case { label: string; xShape: number[]; statShape: number[]; withScale: boolean; withOffset: boolean }

const cases: Case[] = [
  { label: 'NHWC, per-channel vectors', xShape: [2, 5, 6, 4], statShape: [4], withScale: true, withOffset: true },
  { label: 'statistics shaped [1, 1, 1, C]', xShape: [3, 2, 2, 5], statShape: [1, 1, 1, 5], withScale: true, withOffset: true },
  { label: 'no scale, no offset', xShape: [2, 3, 3, 3], statShape: [3], withScale: false, withOffset: false },
  { label: '2-D input', xShape: [7, 6], statShape: [6], withScale: true, withOffset: false },
  { label: 'full-shape statistics (stock path)', xShape: [2, 3, 3, 2], statShape: [2, 3, 3, 2], withScale: true, withOffset: true },
];

const values = (shape: number[], seed: number, positive = false) => {
  const size = shape.reduce((a, b) => a * b, 1);
  const v = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 1.3 + seed) * 3);
  return tf.tensor(positive ? v.map((a) => a * a + 0.05) : v, shape);
};

describe('FusedBatchNorm on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it.each(cases)('equals the stock kernel: $label', (c) => {
    tf.tidy(() => {
      const inputs = {
        x: values(c.xShape, 1),
        mean: values(c.statShape, 2),
        variance: values(c.statShape, 3, true),
        ...(c.withOffset ? { offset: values(c.statShape, 4) } : {}),
        ...(c.withScale ? { scale: values(c.statShape, 5) } : {}),
      };
      const attrs = { varianceEpsilon: 1e-3 };
      const ours = tf.engine().runKernel(tf.FusedBatchNorm, inputs, attrs) as tf.Tensor;
      const stock = getStockWasmKernel(tf.FusedBatchNorm)!;
      const info = stock.kernelFunc({ inputs, attrs, backend: tf.backend() }) as tf.TensorInfo;
      const expected = tf.engine().makeTensorFromTensorInfo(info);
      expect(ours.shape).toEqual(c.xShape);
      const e = expected.dataSync();
      ours.dataSync().forEach((v, i) => expect(v).toBeCloseTo(e[i]!, 4));
      // Not the identity: the statistics change the values.
      expect(ours.sub(inputs.x).abs().max().dataSync()[0]).toBeGreaterThan(0.1);
    });
  });
});
