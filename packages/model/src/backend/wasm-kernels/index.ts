import * as tf from '@tensorflow/tfjs';
import { registerConv2DBackpropFilter } from './conv2d-backprop-filter.js';
import { registerConv2DBackpropInput } from './conv2d-backprop-input.js';
import { unregisterWasmKernel } from './kernel-utils.js';
import { registerMaxPoolGrad } from './max-pool-grad.js';
import { registerTile } from './tile.js';

/**
 * Registers the training kernels that backend wasm lacks or runs slowly. Kernels are
 * registered for backend 'wasm' only; calling this more than once is harmless.
 */
export function registerFastWasmKernels(): void {
  registerConv2DBackpropFilter();
  registerConv2DBackpropInput();
  registerTile();
  registerMaxPoolGrad();
}

/** Restores the backend's own kernels (benchmarks compare against them). Idempotent. */
export function unregisterFastWasmKernels(): void {
  for (const name of [tf.Conv2DBackpropFilter, tf.Conv2DBackpropInput, tf.Tile, tf.MaxPoolGrad]) unregisterWasmKernel(name);
}

export { getStockWasmKernel } from './kernel-utils.js';
