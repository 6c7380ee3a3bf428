import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { registerFastWasmKernels } from './index.js';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;

/** Deterministic values in [-1, 1) so that failures reproduce. */
function randomValues(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let s = seed >>> 0;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/**
 * Both conv gradients by the definition: every (output pixel, tap) pair scatters into the
 * filter gradient and the input gradient.
 */
function referenceGrads(
  x: Float32Array, xShape: Shape4, w: Float32Array, wShape: Shape4, dy: Float32Array,
  info: tf.backend_util.Conv2DInfo,
): { dW: Float32Array; dX: Float32Array } {
  const [n, h, wd, cin] = xShape;
  const [kh, kw, , cout] = wShape;
  const { outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const dW = new Float32Array(kh * kw * cin * cout);
  const dX = new Float32Array(n * h * wd * cin);
  for (let b = 0; b < n; b++) for (let y = 0; y < ho; y++) for (let xo = 0; xo < wo; xo++) {
    const dyBase = ((b * ho + y) * wo + xo) * cout;
    for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
      const i = y * sh + ky - top;
      const j = xo * sw + kx - left;
      if (i < 0 || i >= h || j < 0 || j >= wd) continue;
      for (let ci = 0; ci < cin; ci++) {
        const xi = ((b * h + i) * wd + j) * cin + ci;
        const wBase = ((ky * kw + kx) * cin + ci) * cout;
        for (let co = 0; co < cout; co++) {
          const g = dy[dyBase + co]!;
          dW[wBase + co]! += x[xi]! * g;
          dX[xi]! += w[wBase + co]! * g;
        }
      }
    }
  }
  return { dW, dX };
}

function expectClose(actual: Float32Array | ArrayLike<number>, expected: Float32Array, label: string): void {
  expect(actual.length, label).toBe(expected.length);
  let scale = 1e-6;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst / scale, label).toBeLessThan(1e-4);
}

interface Case { k: number; stride: number; pad: Pad; h: number; w: number; label: string }

function cases(): Case[] {
  const out: Case[] = [];
  const sizes: [number, number][] = [[7, 8], [8, 9]];
  for (const k of [1, 3, 5, 7]) for (const stride of [1, 2]) for (const [h, w] of sizes) {
    const explicit: tf.backend_util.ExplicitPadding = [[0, 0], [1, k - 1], [k > 1 ? 2 : 0, 0], [0, 0]];
    for (const pad of ['same', 'valid', explicit] as Pad[]) {
      if (pad === 'valid' && (h < k || w < k)) continue;
      out.push({ k, stride, pad, h, w, label: `k=${k} stride=${stride} ${h}x${w} ${describePad(pad)}` });
    }
  }
  return out;
}

function describePad(pad: Pad): string {
  return typeof pad === 'string' ? pad : `explicit ${JSON.stringify(pad.slice(1, 3))}`;
}

describe('conv2d gradient kernels on wasm', () => {
  beforeAll(async () => {
    const info = await initBackend({ prefer: 'wasm' });
    expect(info.name).toBe('wasm');
  });

  it.each(cases())('match the definition: $label', ({ k, stride, pad, h, w, label }) => {
    const xShape: Shape4 = [2, h, w, 3];
    const wShape: Shape4 = [k, k, 3, 4];
    const info = tf.backend_util.computeConv2DInfo(xShape, wShape, stride, 1, pad);
    const dyShape: Shape4 = [2, info.outHeight, info.outWidth, 4];
    const xv = randomValues(2 * h * w * 3, k * 31 + stride + h);
    const wv = randomValues(k * k * 12, k * 17 + w);
    const dyv = randomValues(dyShape.reduce((a, b) => a * b), stride * 7 + k);
    const expected = referenceGrads(xv, xShape, wv, wShape, dyv, info);

    tf.tidy(() => {
      const x = tf.tensor4d(xv, xShape);
      const filter = tf.tensor4d(wv, wShape);
      const dy = tf.tensor4d(dyv, dyShape);
      const attrs = { strides: stride, pad, dataFormat: 'NHWC' };
      const dW = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape: wShape }) as tf.Tensor;
      const dX = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, { ...attrs, inputShape: xShape }) as tf.Tensor;
      expect(dW.shape).toEqual(wShape);
      expect(dX.shape).toEqual(xShape);
      expectClose(dW.dataSync(), expected.dW, `dW ${label}`);
      expectClose(dX.dataSync(), expected.dX, `dX ${label}`);
    });
  });

  // With stride 1 the filter gradient is taken a few output rows at a time (512 kB of dy per
  // product): these shapes need several chunks, the last one shorter.
  it.each([
    { xShape: [4, 40, 40, 8] as Shape4, k: 3, cout: 64, pad: 'same' as Pad },
    { xShape: [3, 37, 35, 5] as Shape4, k: 3, cout: 128, pad: 'valid' as Pad },
    { xShape: [2, 30, 26, 3] as Shape4, k: 5, cout: 1200, pad: [[0, 0], [2, 1], [0, 3], [0, 0]] as Pad },
  ])('filter gradient in row chunks matches the definition and frees its chunks: $xShape k=$k cout=$cout', ({ xShape, k, cout, pad }) => {
    const wShape: Shape4 = [k, k, xShape[3], cout];
    const info = tf.backend_util.computeConv2DInfo(xShape, wShape, 1, 1, pad);
    const dyShape: Shape4 = [xShape[0], info.outHeight, info.outWidth, cout];
    const xv = randomValues(xShape.reduce((a, b) => a * b), 5);
    const dyv = randomValues(dyShape.reduce((a, b) => a * b), 6);
    const expected = referenceGrads(xv, xShape, new Float32Array(wShape.reduce((a, b) => a * b)), wShape, dyv, info);
    const dataIds = tf.backend().numDataIds();
    tf.tidy(() => {
      const dW = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor4d(xv, xShape), dy: tf.tensor4d(dyv, dyShape) }, { strides: 1, pad, dataFormat: 'NHWC', filterShape: wShape }) as tf.Tensor;
      expect(dW.shape).toEqual(wShape);
      expectClose(dW.dataSync(), expected.dW, 'dW');
    });
    expect(tf.backend().numDataIds()).toBe(dataIds);
  });

  it('give a small conv net the same gradients as the cpu backend', async () => {
    const shapes: Shape4[] = [[3, 3, 2, 4], [3, 3, 4, 6], [5, 5, 6, 3]];
    const weights = shapes.map((shape, i) => randomValues(shape.reduce((a, b) => a * b), 100 + i));
    const input = randomValues(3 * 13 * 12 * 2, 99);
    const gradsOn = async (backendName: string): Promise<Float32Array[]> => {
      expect(await tf.setBackend(backendName)).toBe(true);
      return tf.tidy(() => {
        const x = tf.tensor4d(input, [3, 13, 12, 2]);
        const params = weights.map((v, i) => tf.tensor4d(v, shapes[i]));
        const bias = tf.linspace(-0.2, 0.2, 4);
        const loss = (...w: tf.Tensor[]): tf.Scalar => {
          const [w1, w2, w3] = w as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
          const h1 = tf.fused.conv2d({ x, filter: w1, strides: 1, pad: 'same', bias, activation: 'relu' });
          const h2 = tf.relu(tf.conv2d(h1, w2, 2, 'valid'));
          return tf.conv2d(h2, w3, 1, 'same').square().mean();
        };
        return tf.grads(loss)(params).map((g) => g.dataSync() as Float32Array);
      });
    };
    const onCpu = await gradsOn('cpu');
    const onWasm = await gradsOn('wasm');
    onCpu.forEach((expected, i) => expectClose(onWasm[i]!, expected, `gradient of w${i + 1}`));
  });

  it('can be registered twice and leaks no memory across calls', () => {
    registerFastWasmKernels();
    registerFastWasmKernels();
    const x = tf.tensor4d(randomValues(2 * 9 * 9 * 3, 1), [2, 9, 9, 3]);
    const filter = tf.tensor4d(randomValues(3 * 3 * 3 * 5, 2), [3, 3, 3, 5]);
    const run = (): void => {
      tf.tidy(() => {
        const [dx, dw] = tf.grads((a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'valid').square().sum())([x, filter]);
        dx!.dataSync();
        dw!.dataSync();
      });
    };
    run();
    const before = { ...tf.memory(), dataIds: tf.backend().numDataIds() };
    for (let i = 0; i < 20; i++) run();
    const after = { ...tf.memory(), dataIds: tf.backend().numDataIds() };
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    // Intermediates inside a kernel are invisible to tf.memory(); the backend still counts them.
    expect(after.dataIds).toBe(before.dataIds);
    tf.dispose([x, filter]);
  });
});
