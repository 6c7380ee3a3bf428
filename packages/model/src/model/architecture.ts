import * as tf from '@tensorflow/tfjs';

/** A compact CNN sized for CPU training: blocks of (conv, batch norm, ReLU) × convsPerBlock, then max-pool. */
export interface ArchitectureConfig {
  inputSize: number;
  numClasses: number;
  filters: number[];
  convsPerBlock: number;
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

export function buildClassifier(config: ArchitectureConfig): tf.LayersModel {
  const input = tf.input({ shape: [config.inputSize, config.inputSize, 1], name: 'image' });
  const regularizer = config.l2 > 0 ? tf.regularizers.l2({ l2: config.l2 }) : undefined;
  let x: tf.SymbolicTensor = input;
  config.filters.forEach((filters, block) => {
    const last = block === config.filters.length - 1;
    for (let c = 0; c < config.convsPerBlock; c++) {
      x = tf.layers
        .conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: 'heNormal', kernelRegularizer: regularizer, name: `b${block}_conv${c}` })
        .apply(x) as tf.SymbolicTensor;
      // Momentum 0.9: with a few dozen steps per epoch, 0.99 leaves the moving statistics near their
      // initial values for several epochs and validation sees a different network than training.
      x = tf.layers.batchNormalization({ momentum: 0.9, name: `b${block}_bn${c}` }).apply(x) as tf.SymbolicTensor;
      const isCam = last && c === config.convsPerBlock - 1;
      x = tf.layers.reLU({ name: isCam ? CAM_LAYER : `b${block}_relu${c}` }).apply(x) as tf.SymbolicTensor;
    }
    if (!last) x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `b${block}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: config.dropout, name: 'dropout' }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers
    .dense({ units: config.numClasses, activation: 'softmax', kernelRegularizer: regularizer, name: CLASSIFIER_LAYER })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'btd_cnn' });
}
