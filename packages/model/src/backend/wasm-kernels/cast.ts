import * as tf from '@tensorflow/tfjs';
import { identity } from './identity.js';
import { registerWasmKernel, runStockKernel, type WasmKernelArgs } from './kernel-utils.js';

/**
 * Cast that shares the data when the type does not change (as Identity does) instead of
 * copying it; gradients cast float32 tensors to float32 all the time. Other casts are stock.
 */
export function cast(args: WasmKernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { dtype } = args.attrs as unknown as tf.CastAttrs;
  if (x.dtype === dtype && dtype !== 'string') return identity(args);
  return runStockKernel(tf.Cast, args);
}

export function registerCast(): void {
  registerWasmKernel(tf.Cast, cast);
}
