import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { affine, affine2, channelMoments, gradientSums, simdChannels } from './channel-ops.js';
import { layerCallOverride, singleInput, type LayerCall } from './layer-call-override.js';

/** The fields of tf.layers' BatchNormalization this module reads (they are not public in its types). */
interface BatchNormLayer {
  axis: number;
  epsilon: number;
  momentum: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

const wrap = (info: tf.TensorInfo): tf.Tensor => tf.engine().makeTensorFromTensorInfo(info);

/**
 * Batch normalisation of a [..., C] activation with its own batch statistics, as one operation
 * with its own gradient. Forward: the statistics in one pass, y = x·a + b in another. Backward,
 * with r = 1/sqrt(var + ε), γ the scale, M the values per channel and k = Σ dy·(x − mean):
 *   dx = dy·γr − x·γr³k/M + (−γrΣdy/M + mean·γr³k/M),  dγ = r·k,  dβ = Σdy,
 * one pass for the two sums and one for dx. Built from TensorFlow.js operations (moments, then
 * batchNorm), the same step took about twenty full-size passes, since the gradient also flows
 * back through the mean and the variance.
 */
function normalizeInTraining(layer: BatchNormLayer, input: tf.Tensor): tf.Tensor {
  const backend = tf.backend() as BackendWasm;
  const { mean, variance } = channelMoments(backend, input);
  const c = mean.length;
  const rows = input.size / c;
  const r = variance.map((v) => 1 / Math.sqrt(v + layer.epsilon));
  const normalize = tf.customGrad((x, gamma, beta, save) => {
    const g = (gamma as tf.Tensor).dataSync();
    const b = (beta as tf.Tensor).dataSync();
    const a = r.map((rj, j) => g[j]! * rj);
    const shift = a.map((aj, j) => b[j]! - mean[j]! * aj);
    (save as unknown as tf.GradSaveFunc)([x as tf.Tensor]);
    return {
      value: wrap(affine(backend, x as tf.Tensor, a, shift)),
      gradFunc: (dy, saved) => {
        const [xs] = saved as [tf.Tensor];
        const { sumDy, sumDyX } = gradientSums(backend, dy as tf.Tensor, xs, mean);
        const onX = a.map((aj, j) => (-aj * r[j]! * r[j]! * sumDyX[j]!) / rows);
        const constant = a.map((aj, j) => (-aj * sumDy[j]!) / rows - onX[j]! * mean[j]!);
        return [
          wrap(affine2(backend, dy as tf.Tensor, xs, a, onX, constant)),
          tf.tensor1d(Float32Array.from(r, (rj, j) => rj * sumDyX[j]!)),
          tf.tensor1d(Float32Array.from(sumDy)),
        ];
      },
    };
  });
  const y = normalize(input, layer.gamma.read(), layer.beta.read());
  // The moving statistics, exactly as tf.layers updates them.
  for (const [variable, value] of [[layer.movingMean, mean], [layer.movingVariance, variance]] as const) {
    tf.tidy(() => {
      const current = variable.read();
      variable.write(tf.sub(current, tf.mul(tf.sub(current, tf.tensor1d(Float32Array.from(value))), 1 - layer.momentum)));
    });
  }
  return y;
}

function canFuse(layer: BatchNormLayer, input: tf.Tensor): boolean {
  return (
    tf.getBackend() === 'wasm' &&
    layer.center &&
    layer.scale &&
    (layer.axis === -1 || layer.axis === input.rank - 1) &&
    simdChannels(input) !== undefined &&
    input.size > 0
  );
}

const override = layerCallOverride<BatchNormLayer>(
  Object.getPrototypeOf(tf.layers.batchNormalization({})) as object,
  (original: LayerCall<BatchNormLayer>) =>
    function (this: BatchNormLayer, inputs, kwargs) {
      const input = singleInput(inputs);
      if (kwargs?.['training'] !== true || input === undefined || !canFuse(this, input)) return original.call(this, inputs, kwargs);
      return tf.tidy(() => normalizeInTraining(this, input));
    },
);

/**
 * Makes every tf.layers BatchNormalization normalise with {@link normalizeInTraining} when
 * training on wasm with channels last (a multiple of 4), else as before; inference is
 * untouched, and so are saved models. Idempotent.
 */
export function registerBatchNormTraining(): void {
  override.install();
}

/** Puts tf.layers' own BatchNormalization call back. Idempotent. */
export function unregisterBatchNormTraining(): void {
  override.uninstall();
}
