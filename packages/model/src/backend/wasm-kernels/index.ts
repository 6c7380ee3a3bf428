import * as tf from '@tensorflow/tfjs';
import { registerBatchNormGradient, unregisterBatchNormGradient } from './batch-norm-grad.js';
import { registerBatchNormTraining, unregisterBatchNormTraining } from './batch-norm-training.js';
import { registerCast } from './cast.js';
import { registerConvTraining, unregisterConvTraining } from './conv-training.js';
import { registerConv2DBackpropFilter } from './conv2d-backprop-filter.js';
import { registerConv2DBackpropInput } from './conv2d-backprop-input.js';
import { registerFusedBatchNorm } from './fused-batch-norm.js';
import { registerIdentity } from './identity.js';
import { unregisterWasmKernel } from './kernel-utils.js';
import { registerMaxPoolGrad } from './max-pool-grad.js';
import { registerReductionGradients, unregisterReductionGradients } from './reduction-grads.js';
import { registerLeadingAxisReductions } from './reduce-leading-axes.js';
import { registerReluGradient, unregisterReluGradient } from './relu-grad.js';
import { registerTile } from './tile.js';

/**
 * Registers the training kernels that backend wasm lacks or runs slowly, for backend 'wasm'
 * only; cheaper gradients for FusedBatchNorm, Sum, Mean and Relu (gradients apply to every
 * backend; these give the same values); and, when training on wasm, batch normalisation as one
 * fused operation and convolutions whose gradient skips what nothing reads. Calling this more
 * than once is harmless.
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
  registerCast();
  registerReluGradient();
  registerBatchNormTraining();
  registerConvTraining();
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
  tf.Cast,
];

/**
 * Restores the backend's own kernels, all of them or the named ones (benchmarks compare
 * against them); a kernel the backend lacks is left unregistered. Without names, the stock
 * gradients and batch normalisation are restored too. Idempotent.
 */
export function unregisterFastWasmKernels(kernelNames?: readonly string[]): void {
  for (const name of kernelNames ?? FAST_WASM_KERNELS) unregisterWasmKernel(name);
  if (kernelNames === undefined) {
    unregisterBatchNormGradient();
    unregisterReductionGradients();
    unregisterReluGradient();
    unregisterBatchNormTraining();
    unregisterConvTraining();
  }
}

export { registerBatchNormGradient, unregisterBatchNormGradient } from './batch-norm-grad.js';
export { registerReductionGradients, unregisterReductionGradients } from './reduction-grads.js';
export { registerReluGradient, unregisterReluGradient } from './relu-grad.js';
export { registerBatchNormTraining, unregisterBatchNormTraining } from './batch-norm-training.js';
export { registerConvTraining, unregisterConvTraining } from './conv-training.js';

export { getStockWasmKernel } from './kernel-utils.js';
