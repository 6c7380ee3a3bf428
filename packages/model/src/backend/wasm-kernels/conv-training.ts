import * as tf from '@tensorflow/tfjs';
import { layerCallOverride, singleInput, type LayerCall } from './layer-call-override.js';

/** The fields of tf.layers' Conv2D this module reads (they are not public in its types). */
interface ConvLayer {
  rank: number;
  bias: tf.LayerVariable | null;
  kernel: tf.LayerVariable;
  activation: { getClassName(): string } | null;
  strides: number[];
  padding: string;
  dataFormat: string;
  dilationRate: number[];
}

function isPlainConvolution(layer: ConvLayer, input: tf.Tensor): boolean {
  return (
    tf.getBackend() === 'wasm' &&
    layer.rank === 2 &&
    layer.bias == null &&
    (layer.activation == null || layer.activation.getClassName() === 'linear') &&
    layer.dataFormat === 'channelsLast' &&
    (layer.padding === 'same' || layer.padding === 'valid') &&
    input.rank === 4
  );
}

const override = layerCallOverride<ConvLayer>(
  Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1 })) as object,
  (original: LayerCall<ConvLayer>) =>
    function (this: ConvLayer, inputs, kwargs) {
      const input = singleInput(inputs);
      if (kwargs?.['training'] !== true || input === undefined || !isPlainConvolution(this, input)) return original.call(this, inputs, kwargs);
      const { strides, padding, dilationRate } = this;
      return tf.tidy(() =>
        tf.conv2d(input as tf.Tensor4D, this.kernel.read() as tf.Tensor4D, strides as [number, number], padding as 'same' | 'valid', 'NHWC', dilationRate as [number, number]),
      );
    },
);

/**
 * Makes every tf.layers Conv2D without bias or activation convolve with the plain conv2d
 * operation when training on wasm. tf.layers uses the fused operation, whose gradient always
 * computes the input gradient too, so the first layer computed a gradient for the image itself
 * that nothing reads; the plain operation's gradient computes only what is asked for. The
 * same convolution otherwise; inference and saved models are untouched. Idempotent.
 */
export function registerConvTraining(): void {
  override.install();
}

/** Puts tf.layers' own Conv2D call back. Idempotent. */
export function unregisterConvTraining(): void {
  override.uninstall();
}
