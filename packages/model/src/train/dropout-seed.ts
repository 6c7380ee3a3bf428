import type * as tf from '@tensorflow/tfjs';

/**
 * Gives a network's dropout layers the seed of this step. tfjs's Dropout layer draws every mask
 * from the seed it was built with: left unseeded it draws from `Math.random`, so a run could not be
 * repeated from its seed, and seeded once it would drop the same units at every step.
 */
export function seedDropout(model: tf.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() === 'Dropout') (layer as unknown as { seed: number }).seed = seed;
  }
}
