import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export const WASM = 'wasm';

/** Arguments every kernel function receives, with the backend typed as wasm. */
export interface WasmKernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: BackendWasm;
  attrs?: tf.NamedAttrMap;
}

/** The kernel configs we replaced, so that they can be used as fallbacks and restored. */
const stockKernels = new Map<string, tf.KernelConfig>();
/** Kernel functions we registered, to recognise our own registrations. */
const ownKernelFuncs = new Set<tf.KernelFunc>();

/**
 * Runs another wasm kernel directly (no engine bookkeeping, no tape). The caller owns the
 * returned tensor info and must free it with `backend.disposeData(info.dataId)`.
 */
export function runWasmKernel(
  kernelName: string,
  backend: BackendWasm,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): tf.TensorInfo {
  const config = tf.getKernel(kernelName, WASM);
  if (config === undefined) {
    throw new Error(`Kernel '${kernelName}' is not registered for backend 'wasm'`);
  }
  return config.kernelFunc({ inputs, backend, attrs }) as tf.TensorInfo;
}

/** Calls the kernel we replaced for `kernelName` (the backend's own implementation). */
export function runStockKernel(kernelName: string, args: WasmKernelArgs): tf.TensorInfo {
  const stock = stockKernels.get(kernelName);
  if (stock === undefined) {
    throw new Error(`No stock wasm kernel '${kernelName}' to fall back to`);
  }
  return stock.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
}

/** A new shape for the same data, like Reshape but without touching the reference count. */
export function view(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** Frees intermediates created inside a kernel. */
export function disposeAll(backend: BackendWasm, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * Registers `kernelFunc` for backend wasm. Safe to call more than once. When the backend
 * already has a kernel of that name, it is kept aside (see {@link runStockKernel}) and its
 * `setupFunc` is carried over, since stock kernels bind their wasm functions there.
 */
export function registerWasmKernel(kernelName: string, kernelFunc: (args: WasmKernelArgs) => tf.TensorInfo): void {
  const fn = kernelFunc as unknown as tf.KernelFunc;
  const current = tf.getKernel(kernelName, WASM);
  if (current !== undefined && ownKernelFuncs.has(current.kernelFunc)) return;
  if (current !== undefined) {
    stockKernels.set(kernelName, current);
    tf.unregisterKernel(kernelName, WASM);
  }
  ownKernelFuncs.add(fn);
  tf.registerKernel({ kernelName, backendName: WASM, kernelFunc: fn, setupFunc: current?.setupFunc });
}

/** Puts back the stock kernel (or none, if the backend had none). Safe to call more than once. */
export function unregisterWasmKernel(kernelName: string): void {
  const current = tf.getKernel(kernelName, WASM);
  if (current === undefined || !ownKernelFuncs.has(current.kernelFunc)) return;
  tf.unregisterKernel(kernelName, WASM);
  const stock = stockKernels.get(kernelName);
  if (stock !== undefined) tf.registerKernel(stock);
}

/** The backend's own kernel for `kernelName`, whether or not ours currently replaces it. */
export function getStockWasmKernel(kernelName: string): tf.KernelConfig | undefined {
  const current = tf.getKernel(kernelName, WASM);
  if (current !== undefined && !ownKernelFuncs.has(current.kernelFunc)) return current;
  return stockKernels.get(kernelName);
}
