import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { reluGradient } from './channel-ops.js';

let stockGradient: tf.GradConfig | undefined;
let ours: tf.GradConfig | undefined;

/**
 * Gradient of Relu: dy where x > 0, else 0. TensorFlow.js computes dy · cast(step(x)), three
 * full-size passes (the cast of a float32 tensor to float32 is a copy on wasm); on wasm this
 * is one pass (channel-ops.wat), elsewhere the stock formula.
 */
const gradFunc: tf.GradConfig['gradFunc'] = (dy, saved) => {
  const [x] = saved as [tf.Tensor];
  const g = dy as tf.Tensor;
  return {
    x: () => {
      if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || g.dtype !== 'float32') {
        return tf.mul(g, tf.cast(tf.step(x), 'float32'));
      }
      return tf.engine().makeTensorFromTensorInfo(reluGradient(tf.backend() as BackendWasm, g, x));
    },
  };
};

/** Installs the gradient above for Relu (gradients apply to every backend). Idempotent. */
export function registerReluGradient(): void {
  const current = tf.getGradient(tf.Relu);
  if (current !== undefined && current === ours) return;
  stockGradient = current;
  ours = { kernelName: tf.Relu, inputsToSave: ['x'], gradFunc };
  tf.registerGradient(ours);
}

/** Puts TensorFlow.js's own Relu gradient back. Idempotent. */
export function unregisterReluGradient(): void {
  if (stockGradient === undefined || tf.getGradient(tf.Relu) !== ours) return;
  tf.registerGradient(stockGradient);
}
