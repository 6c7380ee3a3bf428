import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';
import { FAST_WASM_KERNELS, getStockWasmKernel, registerFastWasmKernels, unregisterFastWasmKernels } from './index.js';

describe('registering the fast wasm kernels', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('replaces stock kernels, and restores them when unregistered, any number of times', () => {
    const stockTile = getStockWasmKernel(tf.Tile);
    expect(stockTile).toBeDefined();
    expect(tf.getKernel(tf.Tile, 'wasm')).not.toBe(stockTile);
    expect(getStockWasmKernel(tf.Conv2DBackpropFilter)).toBeUndefined();

    unregisterFastWasmKernels([tf.Tile]);
    unregisterFastWasmKernels([tf.Tile]);
    expect(tf.getKernel(tf.Tile, 'wasm')).toBe(stockTile);
    expect(tf.getKernel(tf.MaxPoolGrad, 'wasm')).not.toBe(getStockWasmKernel(tf.MaxPoolGrad));

    unregisterFastWasmKernels();
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeUndefined();
    expect(() => tf.tidy(() => tf.grad((w: tf.Tensor) => tf.conv2d(tf.ones([1, 3, 3, 1]) as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').sum())(tf.ones([3, 3, 1, 1]))))
      .toThrow(/Conv2DBackpropFilter/);

    registerFastWasmKernels();
    registerFastWasmKernels();
    for (const name of FAST_WASM_KERNELS) expect(tf.getKernel(name, 'wasm')).not.toBe(getStockWasmKernel(name));
    // Kernels are registered for wasm only.
    for (const name of FAST_WASM_KERNELS) {
      expect(tf.getKernel(name, 'cpu')?.kernelFunc).not.toBe(tf.getKernel(name, 'wasm')!.kernelFunc);
    }
    const tiled = tf.tidy(() => tf.tile(tf.tensor4d([1, 2], [1, 1, 1, 2]), [1, 2, 1, 1]).dataSync());
    expect(Array.from(tiled)).toEqual([1, 2, 1, 2]);
  });
});
