import * as tf from '@tensorflow/tfjs';
import { CAM_LAYER } from './architecture.js';

export const LOCATOR_HEAD = 'locator_head';

/**
 * A tumour locator on a classifier's backbone: a 1×1 convolution over the last block's features
 * and a softmax over positions, so the map is a distribution of where the tumour is. Trained on
 * outlines, its peak lands on the tumour far more often than the classifier's activation map.
 */
export function buildLocator(backbone: tf.LayersModel): tf.LayersModel {
  const features = backbone.getLayer(CAM_LAYER).output as tf.SymbolicTensor;
  const [, h, w] = features.shape as number[];
  let x = tf.layers.conv2d({ filters: 1, kernelSize: 1, name: LOCATOR_HEAD }).apply(features) as tf.SymbolicTensor;
  x = tf.layers.reshape({ targetShape: [(h as number) * (w as number)], name: 'locator_flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.softmax({ name: 'locator_softmax' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: backbone.inputs, outputs: x, name: 'btd_locator' });
}
