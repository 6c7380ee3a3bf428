import * as tf from '@tensorflow/tfjs';

/** One operation of the folded chain. */
type Step =
  | { kind: 'conv'; filter: tf.Tensor4D; bias?: tf.Tensor1D; relu: boolean; strides: [number, number]; pad: 'same' | 'valid'; dilations: [number, number] }
  | { kind: 'relu' }
  | { kind: 'maxPool'; poolSize: [number, number]; strides: [number, number]; pad: 'same' | 'valid' }
  | { kind: 'globalAveragePool' }
  | { kind: 'dense'; kernel: tf.Tensor2D; bias?: tf.Tensor1D; softmax: boolean }
  | { kind: 'reshape'; shape: number[] }
  | { kind: 'softmax' };

/** What a folded network returns: its output, and the named layer's output when one was asked for. */
export interface FoldedOutput {
  output: tf.Tensor;
  captured?: tf.Tensor;
}

interface LayerConfig {
  kernelSize?: number[];
  strides?: number[];
  padding?: string;
  dilationRate?: number | number[];
  useBias?: boolean;
  activation?: string;
  poolSize?: number[];
  epsilon?: number;
  axis?: number | number[];
  center?: boolean;
  scale?: boolean;
  targetShape?: number[];
  maxValue?: number | null;
  dataFormat?: string;
}

const pair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v === undefined ? [fallback, fallback] : Array.isArray(v) ? [v[0] ?? fallback, v[1] ?? v[0] ?? fallback] : [v, v];

/**
 * An inference-only copy of a chain of layers: every convolution absorbs the batch normalisation
 * after it (scale into the filter, shift into a bias) and the ReLU after that, so each block runs as
 * one fused convolution instead of a convolution, two arithmetic passes and an activation pass.
 * The weights are copied when it is built: later changes to the model do not reach it.
 */
export class FoldedNetwork {
  private constructor(
    private readonly steps: Step[],
    /** Index of the step whose output is the captured layer's, or -1. */
    private readonly captureAt: number,
  ) {}

  /**
   * Folds `model`, capturing the output of the layer named `capture` if given. Returns undefined when
   * the model is not a plain chain of the layers this class knows, or when the folded copy does not
   * reproduce the model on a probe input.
   */
  static tryFold(model: tf.LayersModel, capture?: string): FoldedNetwork | undefined {
    const built = tf.tidy(() => buildSteps(model, capture));
    if (built === undefined) return undefined;
    const network = new FoldedNetwork(built.steps, built.captureAt);
    if (!network.matches(model, capture)) {
      network.dispose();
      return undefined;
    }
    return network;
  }

  /** The operations it runs, e.g. ['conv+relu', 'maxPool', ..., 'dense+softmax']. */
  get operations(): string[] {
    return this.steps.map((step) => {
      if (step.kind === 'conv') return step.relu ? 'conv+relu' : 'conv';
      if (step.kind === 'dense') return step.softmax ? 'dense+softmax' : 'dense';
      return step.kind;
    });
  }

  run(x: tf.Tensor4D): FoldedOutput {
    return tf.tidy(() => {
      let h: tf.Tensor = x;
      let captured: tf.Tensor | undefined;
      this.steps.forEach((step, i) => {
        h = apply(step, h);
        if (i === this.captureAt) captured = h;
      });
      return captured ? { output: h, captured } : { output: h };
    });
  }

  dispose(): void {
    for (const step of this.steps) {
      if (step.kind === 'conv') tf.dispose([step.filter, step.bias]);
      if (step.kind === 'dense') tf.dispose([step.kernel, step.bias]);
    }
  }

  /** Compares with the model on a deterministic two-image input (one pass each, at load time). */
  private matches(model: tf.LayersModel, capture?: string): boolean {
    return tf.tidy(() => {
      const shape = model.inputs[0]!.shape.slice(1) as number[];
      const size = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor4d(Float32Array.from({ length: 2 * size }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37)), [2, ...shape] as [number, number, number, number]);
      const reference = withCapture(model, capture).predict(x) as tf.Tensor | tf.Tensor[];
      const [expectedCapture, expectedOutput] = Array.isArray(reference) && capture ? reference : [undefined, reference as tf.Tensor];
      const folded = this.run(x);
      const close = (a: tf.Tensor, b: tf.Tensor) => {
        if (a.shape.join() !== b.shape.join()) return false;
        const scale = Math.max(1, a.abs().max().dataSync()[0] as number);
        return (a.sub(b).abs().max().dataSync()[0] as number) <= 1e-4 * scale;
      };
      return close(folded.output, expectedOutput as tf.Tensor) && (!expectedCapture || (folded.captured !== undefined && close(folded.captured, expectedCapture)));
    });
  }
}

/** The model with the named layer's output first and the model's output second; the model itself without a capture. */
export function withCapture(model: tf.LayersModel, capture?: string): tf.LayersModel {
  if (capture === undefined) return model;
  return tf.model({ inputs: model.inputs, outputs: [model.getLayer(capture).output as tf.SymbolicTensor, model.outputs[0] as tf.SymbolicTensor] });
}

function apply(step: Step, h: tf.Tensor): tf.Tensor {
  switch (step.kind) {
    case 'conv':
      return tf.fused.conv2d({
        x: h as tf.Tensor4D, filter: step.filter, strides: step.strides, pad: step.pad, dilations: step.dilations,
        bias: step.bias, activation: step.relu ? 'relu' : 'linear',
      });
    case 'relu':
      return tf.relu(h);
    case 'maxPool':
      return tf.maxPool(h as tf.Tensor4D, step.poolSize, step.strides, step.pad);
    case 'globalAveragePool':
      return h.mean([1, 2]);
    case 'dense': {
      const logits = tf.fused.matMul({ a: h as tf.Tensor2D, b: step.kernel, bias: step.bias });
      return step.softmax ? tf.softmax(logits) : logits;
    }
    case 'reshape':
      return h.reshape([-1, ...step.shape]);
    case 'softmax':
      return tf.softmax(h);
  }
}

/**
 * Reads the chain; undefined at the first layer it cannot fold or run. Call inside a tidy: the
 * tensors of the returned steps are kept, any others are freed.
 */
function buildSteps(model: tf.LayersModel, capture?: string): { steps: Step[]; captureAt: number } | undefined {
  const layers = model.layers;
  if (model.inputs.length !== 1 || model.outputs.length !== 1 || !isChain(model)) return undefined;
  const steps: Step[] = [];
  let captureAt = -1;
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i] as tf.layers.Layer;
    const config = layer.getConfig() as LayerConfig;
    const className = layer.getClassName();
    let step: Step | undefined;
    if (className === 'InputLayer' || className === 'Dropout') {
      if (layer.name === capture) captureAt = steps.length - 1;
      continue;
    } else if (className === 'Conv2D') {
      if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') return undefined;
      const [kernel, bias] = layer.getWeights() as [tf.Tensor4D, tf.Tensor1D | undefined];
      let filter = kernel.clone();
      let shift = config.useBias ? bias?.clone() : undefined;
      let relu = config.activation === 'relu';
      if (config.activation !== 'linear' && !relu) return undefined;
      // Absorb a following batch normalisation, then a following ReLU, unless a layer in between is captured.
      const next = layers[i + 1];
      if (!relu && layer.name !== capture && next?.getClassName() === 'BatchNormalization') {
        const folded = foldBatchNorm(next, filter, shift);
        if (folded === undefined) return undefined;
        [filter, shift] = folded;
        i += 1;
      }
      const after = layers[i + 1];
      if (!relu && layers[i]!.name !== capture && after && isPlainRelu(after)) {
        relu = true;
        i += 1;
      }
      step = { kind: 'conv', filter, bias: shift, relu, strides: pair(config.strides, 1), pad: padding(config), dilations: pair(config.dilationRate, 1) };
    } else if (isPlainRelu(layer)) {
      step = { kind: 'relu' };
    } else if (className === 'MaxPooling2D') {
      step = { kind: 'maxPool', poolSize: pair(config.poolSize, 2), strides: pair(config.strides ?? config.poolSize, 2), pad: padding(config) };
    } else if (className === 'GlobalAveragePooling2D') {
      step = { kind: 'globalAveragePool' };
    } else if (className === 'Dense') {
      if (config.activation !== 'softmax' && config.activation !== 'linear') return undefined;
      const [kernel, bias] = layer.getWeights() as [tf.Tensor2D, tf.Tensor1D | undefined];
      step = { kind: 'dense', kernel: kernel.clone(), bias: config.useBias && bias ? bias.clone() : undefined, softmax: config.activation === 'softmax' };
    } else if (className === 'Reshape' && config.targetShape) {
      step = { kind: 'reshape', shape: config.targetShape };
    } else if (className === 'Softmax') {
      step = { kind: 'softmax' };
    } else {
      return undefined;
    }
    steps.push(step);
    if (layers[i]!.name === capture) captureAt = steps.length - 1;
  }
  if (capture !== undefined && captureAt < 0) return undefined;
  return { steps, captureAt };
}

/** Each layer takes the previous one's output and nothing else. */
function isChain(model: tf.LayersModel): boolean {
  const layers = model.layers;
  return layers.every((layer, i) => {
    if (i === 0) return layer.getClassName() === 'InputLayer';
    const inbound = layer.inboundNodes.flatMap((node) => node.inboundLayers);
    return inbound.length > 0 && inbound.every((l) => l === layers[i - 1]);
  });
}

function isPlainRelu(layer: tf.layers.Layer): boolean {
  const config = layer.getConfig() as LayerConfig;
  if (layer.getClassName() === 'ReLU') return config.maxValue === null || config.maxValue === undefined;
  return layer.getClassName() === 'Activation' && config.activation === 'relu';
}

function padding(config: LayerConfig): 'same' | 'valid' {
  return config.padding === 'same' ? 'same' : 'valid';
}

/**
 * y = gamma (conv(x, W) + b - mean) / sqrt(var + eps) + beta
 *   = conv(x, W * s) + (b - mean) * s + beta, with s = gamma / sqrt(var + eps) per output channel.
 */
function foldBatchNorm(bn: tf.layers.Layer, filter: tf.Tensor4D, bias: tf.Tensor1D | undefined): [tf.Tensor4D, tf.Tensor1D] | undefined {
  const config = bn.getConfig() as LayerConfig;
  const axis = Array.isArray(config.axis) ? config.axis : [config.axis ?? -1];
  if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== 3)) return undefined;
  const byName = (part: string) => bn.weights.find((w) => w.originalName.endsWith(part))?.read();
  const mean = byName('moving_mean');
  const variance = byName('moving_variance');
  if (!mean || !variance) return undefined;
  const gamma = config.scale === false ? tf.onesLike(mean) : byName('gamma');
  const beta = config.center === false ? tf.zerosLike(mean) : byName('beta');
  if (!gamma || !beta) return undefined;
  const s = gamma.div(variance.add(config.epsilon ?? 1e-3).sqrt());
  const shifted = (bias ?? tf.zerosLike(mean)).sub(mean).mul(s).add(beta);
  return [filter.mul(s) as tf.Tensor4D, shifted as tf.Tensor1D];
}
