import * as tf from '@tensorflow/tfjs';
import { registerWasmKernel, runStockKernel, type WasmKernelArgs } from './kernel-utils.js';

/**
 * Identity that shares the input's data (reference counted, as Reshape already does on wasm
 * and Identity does on the cpu backend) instead of copying it. Recording gradients clones
 * every tensor a backward pass needs, so the stock copy cost a full-size memcpy per saved
 * activation. Kernels never write into an existing tensor's data, so sharing is safe.
 */
export function identity(args: WasmKernelArgs): tf.TensorInfo {
  const { inputs, backend } = args;
  const { x } = inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return runStockKernel(tf.Identity, args);
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

export function registerIdentity(): void {
  registerWasmKernel(tf.Identity, identity);
}
