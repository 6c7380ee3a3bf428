import * as tf from '@tensorflow/tfjs';
import { shuffleInPlace } from '../util/random.js';

/** A standard normal draw (Box–Muller). */
function normal(random: () => number): number {
  const u = Math.max(random(), Number.MIN_VALUE);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** A Gamma(shape, 1) draw (Marsaglia–Tsang; shapes below 1 through the boost Gamma(shape + 1) · U^(1/shape)). */
export function sampleGamma(shape: number, random: () => number): number {
  if (shape < 1) return sampleGamma(shape + 1, random) * Math.pow(Math.max(random(), Number.MIN_VALUE), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = random();
    if (Math.log(Math.max(u, Number.MIN_VALUE)) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** A Beta(alpha, alpha) draw. */
export function sampleSymmetricBeta(alpha: number, random: () => number): number {
  const a = sampleGamma(alpha, random);
  const b = sampleGamma(alpha, random);
  return a + b === 0 ? 0.5 : a / (a + b);
}

/**
 * Mixup (Zhang et al., 2018): each image of the batch is blended with another image of the same batch,
 * and its target with that image's target, by one weight λ ~ Beta(alpha, alpha) per batch. λ is folded
 * to max(λ, 1 − λ), so every blend keeps its own image as the larger part and its label stays the
 * dominant one. alpha 0 returns the batch unchanged.
 */
export function mixBatch(x: tf.Tensor4D, target: tf.Tensor2D, alpha: number, random: () => number): { x: tf.Tensor4D; target: tf.Tensor2D; lambda: number } {
  if (alpha <= 0) return { x, target, lambda: 1 };
  const drawn = sampleSymmetricBeta(alpha, random);
  const lambda = Math.max(drawn, 1 - drawn);
  const order = shuffleInPlace(Array.from({ length: x.shape[0] }, (_, i) => i), random);
  return tf.tidy(() => {
    const partner = tf.tensor1d(order, 'int32');
    return {
      x: x.mul(lambda).add(x.gather(partner).mul(1 - lambda)) as tf.Tensor4D,
      target: target.mul(lambda).add(target.gather(partner).mul(1 - lambda)) as tf.Tensor2D,
      lambda,
    };
  });
}
