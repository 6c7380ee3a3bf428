export { initBackend, getBackendInfo } from './init-backend.js';
export type { BackendInfo, BackendName, InitBackendOptions } from './init-backend.js';
export {
  FAST_WASM_KERNELS,
  getStockWasmKernel,
  registerBatchNormGradient,
  registerFastWasmKernels,
  unregisterBatchNormGradient,
  unregisterFastWasmKernels,
  unregisterReductionGradients,
  unregisterReluGradient,
  unregisterBatchNormTraining,
  unregisterConvTraining,
} from './wasm-kernels/index.js';
