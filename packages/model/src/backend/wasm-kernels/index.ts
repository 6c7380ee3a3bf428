import * as tf from '@tensorflow/tfjs';
import { registerBatchNormGradient, unregisterBatchNormGradient } from './batch-norm-grad.js';
import { registerConv2DBackpropFilter } from './conv2d-backprop-filter.js';
import { registerConv2DBackpropInput } from './conv2d-backprop-input.js';
import { registerFusedBatchNorm } from './fused-batch-norm.js';
import { registerIdentity } from './identity.js';
import { unregisterWasmKernel } from './kernel-utils.js';
import { registerMaxPoolGrad } from './max-pool-grad.js';
import { registerReductionGradients, unregisterReductionGradients } from './reduction-grads.js';
import { registerLeadingAxisReductions } from './reduce-leading-axes.js';
import { registerTile } from './tile.js';

/**
 * Registers the training kernels that backend wasm lacks or runs slowly, for backend 'wasm'
 * only, and cheaper gradients for FusedBatchNorm, Sum and Mean (gradients apply to every
 * backend; these give the same values). Calling this more than once is harmless.
 */
export function registerFastWasmKernels(): void {
  registerConv2DBackpropFilter();
  registerConv2DBackpropInput();
  registerTile();
  registerMaxPoolGrad();
  registerIdentity();
  registerLeadingAxisReductions();
  registerFusedBatchNorm();
  registerBatchNormGradient();
  registerReductionGradients();
}

/** Names of the kernels {@link registerFastWasmKernels} registers. */
export const FAST_WASM_KERNELS: readonly string[] = [
  tf.Conv2DBackpropFilter,
  tf.Conv2DBackpropInput,
  tf.Tile,
  tf.MaxPoolGrad,
  tf.Identity,
  tf.Sum,
  tf.Mean,
  tf.FusedBatchNorm,
];

/**
 * Restores the backend's own kernels, all of them or the named ones (benchmarks compare
 * against them); a kernel the backend lacks is left unregistered. Without names, the stock
 * FusedBatchNorm gradient is restored too. Idempotent.
 */
export function unregisterFastWasmKernels(kernelNames?: readonly string[]): void {
  for (const name of kernelNames ?? FAST_WASM_KERNELS) unregisterWasmKernel(name);
  if (kernelNames === undefined) {
    unregisterBatchNormGradient();
    unregisterReductionGradients();
  }
}

export { registerBatchNormGradient, unregisterBatchNormGradient } from './batch-norm-grad.js';
export { registerReductionGradients, unregisterReductionGradients } from './reduction-grads.js';

export { getStockWasmKernel } from './kernel-utils.js';
