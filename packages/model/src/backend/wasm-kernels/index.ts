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

/** Names of the kernels {@link registerFastWasmKernels} registers. */
export const FAST_WASM_KERNELS: readonly string[] = [tf.Conv2DBackpropFilter, tf.Conv2DBackpropInput, tf.Tile, tf.MaxPoolGrad];

/**
 * Restores the backend's own kernels, all of them or the named ones (benchmarks compare
 * against them); a kernel the backend lacks is left unregistered. Idempotent.
 */
export function unregisterFastWasmKernels(kernelNames: readonly string[] = FAST_WASM_KERNELS): void {
  for (const name of kernelNames) unregisterWasmKernel(name);
}

export { getStockWasmKernel } from './kernel-utils.js';
