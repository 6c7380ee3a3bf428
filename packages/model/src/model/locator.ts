import * as tf from '@tensorflow/tfjs';
import { CAM_LAYER } from './architecture.js';

export const LOCATOR_HEAD = 'locator_head';
export const LOCATOR_HIDDEN = 'locator_hidden';

/** Width of the locator head's hidden layer. */
export const LOCATOR_HIDDEN_FILTERS = 32;

/** The last block's features of a classifier: [side, side, channels], what a locator head reads. */
export function featureShape(classifier: tf.LayersModel): [number, number, number] {
  const [, h, w, c] = classifier.getLayer(CAM_LAYER).outputShape as number[];
  return [h as number, w as number, c as number];
}

/** The positions × 1 map of a locator's output, as a distribution over positions. */
function mapOver(features: tf.SymbolicTensor, hidden: number, seed?: number): tf.SymbolicTensor {
  const [, h, w] = features.shape as number[];
  let x = features;
  if (hidden > 0) {
    x = tf.layers
      .conv2d({ filters: hidden, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }), name: LOCATOR_HIDDEN })
      .apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.conv2d({ filters: 1, kernelSize: 1, kernelInitializer: tf.initializers.glorotUniform({ seed }), name: LOCATOR_HEAD }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reshape({ targetShape: [(h as number) * (w as number)], name: 'locator_flatten' }).apply(x) as tf.SymbolicTensor;
  return tf.layers.softmax({ name: 'locator_softmax' }).apply(x) as tf.SymbolicTensor;
}

/**
 * A tumour locator head on a classifier's last-block features: a 3×3 convolution, ReLU, a 1×1
 * convolution and a softmax over positions, so its map is a distribution of where the tumour is.
 * Trained on outlines with the classifier frozen, it reads the features the classifier computes
 * anyway: locating costs a few per cent of one pass instead of a second network.
 */
export function buildLocatorHead(classifier: tf.LayersModel, seed?: number): tf.LayersModel {
  const input = tf.input({ shape: featureShape(classifier), name: 'locator_features' });
  return tf.model({ inputs: input, outputs: mapOver(input, LOCATOR_HIDDEN_FILTERS, seed), name: 'btd_locator_head' });
}

/**
 * A locator that is a whole network of its own: a classifier's backbone with a 1×1 head, trained
 * with the backbone. Artifacts written before locator heads hold such a locator; they still load.
 */
export function buildLocator(backbone: tf.LayersModel): tf.LayersModel {
  const features = backbone.getLayer(CAM_LAYER).output as tf.SymbolicTensor;
  return tf.model({ inputs: backbone.inputs, outputs: mapOver(features, 0), name: 'btd_locator' });
}

/** Whether `locator` reads the classifier's features (a head) rather than the image (a network of its own). */
export function isLocatorHead(locator: tf.LayersModel, classifier: tf.LayersModel): boolean {
  const input = locator.inputs[0]!.shape.slice(1);
  return JSON.stringify(input) === JSON.stringify(featureShape(classifier));
}
