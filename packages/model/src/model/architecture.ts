import * as tf from '@tensorflow/tfjs';
import { createRandom } from '../util/random.js';

/** A compact CNN sized for CPU training: blocks of (conv, batch norm, ReLU) × convsPerBlock, then max-pool. */
export interface ArchitectureConfig {
  inputSize: number;
  numClasses: number;
  filters: number[];
  convsPerBlock: number;
  /**
   * Residual blocks (He et al. 2016): each block adds its input, through a 1×1 convolution and batch
   * norm where the width changes, to its last batch norm's output before the last ReLU.
   */
  residual?: boolean;
  dropout: number;
  /** L2 weight decay on conv and dense kernels. */
  l2: number;
}

export const DEFAULT_ARCHITECTURE: Omit<ArchitectureConfig, 'inputSize' | 'numClasses'> = {
  filters: [16, 32, 64, 128],
  convsPerBlock: 2,
  dropout: 0.3,
  l2: 1e-4,
};

/** Name of the last convolutional block's output: the class activation map is read from it. */
export const CAM_LAYER = 'cam_features';
/** Name of the classifier layer, whose kernel weighs the class activation map. */
export const CLASSIFIER_LAYER = 'classifier';

/**
 * The classifier with fresh weights. With a seed every kernel is drawn from it (each layer from a
 * seed of its own), so a training run starts from the same weights each time it is repeated;
 * without one, from tfjs's unseeded generator.
 */
export function buildClassifier(config: ArchitectureConfig, seed?: number): tf.LayersModel {
  const layerSeeds = seed === undefined ? undefined : createRandom(seed);
  const initialiser = (kind: 'heNormal' | 'glorotUniform') =>
    layerSeeds ? tf.initializers[kind]({ seed: Math.floor(layerSeeds() * 2 ** 31) }) : kind;
  const input = tf.input({ shape: [config.inputSize, config.inputSize, 1], name: 'image' });
  const regularizer = config.l2 > 0 ? tf.regularizers.l2({ l2: config.l2 }) : undefined;
  let x: tf.SymbolicTensor = input;
  const conv = (filters: number, kernelSize: number, name: string) =>
    tf.layers.conv2d({ filters, kernelSize, padding: 'same', useBias: false, kernelInitializer: initialiser('heNormal'), kernelRegularizer: regularizer, name });
  // Momentum 0.9: with a few dozen steps per epoch, 0.99 leaves the moving statistics near their
  // initial values for several epochs and validation sees a different network than training.
  const batchNorm = (name: string) => tf.layers.batchNormalization({ momentum: 0.9, name });
  config.filters.forEach((filters, block) => {
    const last = block === config.filters.length - 1;
    const blockInput = x;
    for (let c = 0; c < config.convsPerBlock; c++) {
      x = conv(filters, 3, `b${block}_conv${c}`).apply(x) as tf.SymbolicTensor;
      x = batchNorm(`b${block}_bn${c}`).apply(x) as tf.SymbolicTensor;
      const blockEnd = c === config.convsPerBlock - 1;
      if (blockEnd && config.residual) x = tf.layers.add({ name: `b${block}_add` }).apply([x, shortcut(blockInput, filters, block)]) as tf.SymbolicTensor;
      x = tf.layers.reLU({ name: last && blockEnd ? CAM_LAYER : `b${block}_relu${c}` }).apply(x) as tf.SymbolicTensor;
    }
    if (!last) x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `b${block}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  function shortcut(from: tf.SymbolicTensor, filters: number, block: number): tf.SymbolicTensor {
    if (from.shape[3] === filters) return from;
    const projected = conv(filters, 1, `b${block}_shortcut`).apply(from) as tf.SymbolicTensor;
    return batchNorm(`b${block}_shortcut_bn`).apply(projected) as tf.SymbolicTensor;
  }
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: config.dropout, name: 'dropout' }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers
    .dense({ units: config.numClasses, activation: 'softmax', kernelInitializer: initialiser('glorotUniform'), kernelRegularizer: regularizer, name: CLASSIFIER_LAYER })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'btd_cnn' });
}
