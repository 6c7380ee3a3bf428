import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerFastWasmKernels } from './wasm-kernels/index.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** The backend TensorFlow.js runs on, as recorded in logs, benchmarks and model manifests. */
export interface BackendInfo {
  name: string;
  /** wasm only: whether the SIMD build is in use. */
  simd?: boolean;
  /** wasm only: threads per process (1 under Node). */
  threads?: number;
}

export interface InitBackendOptions {
  /** Backend to use instead of the automatic choice (tensorflow if it loads, else wasm). */
  prefer?: BackendName;
}

// tfjs-node is an optional dependency: a variable specifier keeps TypeScript from requiring it.
const TFJS_NODE = '@tensorflow/tfjs-node';

let chosen: Promise<BackendInfo> | undefined;
let info: BackendInfo | undefined;

/**
 * Picks and initialises the TensorFlow.js backend, once per process: later calls return the
 * first call's result whatever their options. `prefer: 'tensorflow'` falls back to wasm when
 * tfjs-node cannot be loaded; on wasm the fast training kernels are registered.
 */
export function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  chosen ??= choose(opts.prefer).then(
    (result) => {
      info = result;
      return result;
    },
    (error: unknown) => {
      // Let a later call try again rather than replaying the failure.
      chosen = undefined;
      throw error;
    },
  );
  return chosen;
}

/** The backend chosen by {@link initBackend}, or undefined before it has finished. */
export function getBackendInfo(): BackendInfo | undefined {
  return info;
}

async function choose(prefer: BackendName | undefined): Promise<BackendInfo> {
  if (prefer === 'cpu') return activate('cpu');
  if (prefer === undefined || prefer === 'tensorflow') {
    if (await loadTfjsNode()) return activate('tensorflow');
  }
  return initWasm();
}

async function loadTfjsNode(): Promise<boolean> {
  try {
    await import(TFJS_NODE);
    return tf.findBackend('tensorflow') !== null || tf.findBackendFactory('tensorflow') !== null;
  } catch {
    return false;
  }
}

async function initWasm(): Promise<BackendInfo> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  const simdFile = require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm');
  wasm.setWasmPaths(path.dirname(simdFile) + path.sep);
  registerFastWasmKernels();
  const result = await activate('wasm');
  return {
    ...result,
    simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
    threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? wasm.getThreadsCount() : 1,
  };
}

async function activate(name: string): Promise<BackendInfo> {
  if (!(await tf.setBackend(name))) {
    throw new Error(`TensorFlow.js backend '${name}' failed to initialise`);
  }
  await tf.ready();
  return { name: tf.getBackend() };
}
