import * as tf from '@tensorflow/tfjs';

let stockGradient: tf.GradConfig | undefined;
let ours: tf.GradConfig | undefined;

/**
 * Gradient of FusedBatchNorm with per-channel statistics (mean of rank 1), written so that
 * per-channel factors are applied after the reductions. With r = rsqrt(variance + eps),
 * s = scale and xm = x - mean, over the reduced axes:
 *   dx = dy * (r s),  dmean = -r s Σdy,  dvariance = -r³ s / 2 · Σ(dy xm),
 *   dscale = r Σ(dy xm),  doffset = Σdy.
 * The stock gradient tiles r to the activation shape and multiplies every term at full size
 * before summing (four full-size sums, about ten full-size products); this needs two sums and
 * three full-size element-wise ops. Other ranks use the stock gradient.
 */
const gradFunc: tf.GradConfig['gradFunc'] = (dy, saved, attrs) => {
  const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
  // Without a scale, TensorFlow.js 4.22 fails before reaching any gradient (saving inputs).
  if (mean.rank !== 1 || scale == null) return stockGradient!.gradFunc(dy, saved, attrs);
  const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
  const g = dy as tf.Tensor;
  const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
  // Shared by several input gradients, each of which the engine runs in a tidy of its own,
  // so they are computed here (only per-channel vectors outlive this tidy).
  const { r, rs, sumDy, sumDyXm } = tf.tidy(() => {
    const r = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
    return {
      r,
      rs: tf.mul(r, scale),
      sumDy: tf.sum(g, axes),
      sumDyXm: tf.sum(tf.mul(g, tf.sub(x, mean)), axes),
    };
  });
  return {
    x: () => tf.mul(g, rs),
    mean: () => tf.neg(tf.mul(rs, sumDy)),
    variance: () => tf.mul(tf.mul(tf.square(r), rs), tf.mul(sumDyXm, tf.scalar(-0.5))),
    scale: () => tf.mul(r, sumDyXm),
    offset: () => tf.clone(sumDy),
  };
};

/**
 * Installs the gradient above for FusedBatchNorm. Gradients are not per backend: this one
 * replaces TensorFlow.js's for every backend, with the same values. Idempotent.
 */
export function registerBatchNormGradient(): void {
  const current = tf.getGradient(tf.FusedBatchNorm);
  if (current !== undefined && current === ours) return;
  stockGradient = current;
  ours = { ...current, kernelName: tf.FusedBatchNorm, inputsToSave: ['x', 'mean', 'variance', 'scale'], gradFunc };
  tf.registerGradient(ours);
}

/** Puts TensorFlow.js's own FusedBatchNorm gradient back. Idempotent. */
export function unregisterBatchNormGradient(): void {
  if (stockGradient === undefined || tf.getGradient(tf.FusedBatchNorm) !== ours) return;
  tf.registerGradient(stockGradient);
}
