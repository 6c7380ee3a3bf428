import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { buildClassifier, CAM_LAYER } from './architecture.js';
import { FoldedNetwork } from './folded-network.js';
import { buildLocator } from './locator.js';

const SIZE = 24;

/** Batch-norm statistics and scales far from their initial values, as after training. */
function randomiseBatchNorms(model: tf.LayersModel, seed: number): void {
  let a = seed;
  const next = () => {
    a = (a * 1103515245 + 12345) % 2147483648;
    return a / 2147483648;
  };
  for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    tf.tidy(() => layer.setWeights(layer.getWeights().map((w, i) => {
      const values = Float32Array.from({ length: w.size }, () => next());
      const name = layer.weights[i]!.name;
      // gamma in [0.5, 1.5], beta and mean in [-0.5, 0.5], variance in [0.1, 2.1].
      const mapped = values.map((v) => (name.includes('gamma') ? 0.5 + v : name.includes('variance') ? 0.1 + 2 * v : v - 0.5));
      return tf.tensor(mapped, w.shape);
    })));
  }
}

function probeInput(count: number): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from({ length: count * SIZE * SIZE }, (_, i) => (i * 7919) % 256 / 255), [count, SIZE, SIZE, 1]);
}

function maxDifference(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0] as number);
}

describe('FoldedNetwork', () => {
  let before = 0;
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });
  afterEach(() => {
    tf.disposeVariables();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs each conv, batch norm and ReLU as one fused convolution and gives the model\'s outputs', () => {
    before = tf.memory().numTensors;
    const model = buildClassifier({ inputSize: SIZE, numClasses: 3, filters: [4, 8], convsPerBlock: 2, dropout: 0.5, l2: 0 });
    randomiseBatchNorms(model, 3);
    const folded = FoldedNetwork.tryFold(model, CAM_LAYER);
    expect(folded?.operations).toEqual(['conv+relu', 'conv+relu', 'maxPool', 'conv+relu', 'conv+relu', 'globalAveragePool', 'dense+softmax']);
    const x = probeInput(3);
    const cam = tf.model({ inputs: model.inputs, outputs: [model.getLayer(CAM_LAYER).output as tf.SymbolicTensor, model.outputs[0] as tf.SymbolicTensor] });
    const [features, probabilities] = cam.predict(x) as tf.Tensor[];
    const out = folded!.run(x);
    expect(out.output.shape).toEqual([3, 3]);
    expect(maxDifference(out.output, probabilities!)).toBeLessThan(1e-5);
    expect(out.captured!.shape).toEqual(features!.shape);
    expect(maxDifference(out.captured!, features!)).toBeLessThan(1e-4);
    tf.dispose([x, features!, probabilities!, out.output, out.captured!]);
    folded!.dispose();
    model.dispose();
  });

  it('folds a locator head on the backbone (no capture)', () => {
    before = tf.memory().numTensors;
    const model = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4, 8], convsPerBlock: 1, dropout: 0, l2: 0 });
    randomiseBatchNorms(model, 5);
    const locator = buildLocator(model);
    const folded = FoldedNetwork.tryFold(locator);
    expect(folded?.operations).toEqual(['conv+relu', 'maxPool', 'conv+relu', 'conv', 'reshape', 'softmax']);
    const x = probeInput(2);
    const expected = locator.predict(x) as tf.Tensor;
    const { output } = folded!.run(x);
    expect(maxDifference(output, expected)).toBeLessThan(1e-6);
    tf.dispose([x, expected, output]);
    folded!.dispose();
    model.dispose();
  });

  it('declines a network that is not a chain, and a capture it cannot find', () => {
    before = tf.memory().numTensors;
    const input = tf.input({ shape: [SIZE, SIZE, 1] });
    const a = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(a) as tf.SymbolicTensor;
    const sum = tf.layers.add().apply([a, b]) as tf.SymbolicTensor;
    const residual = tf.model({ inputs: input, outputs: sum });
    expect(FoldedNetwork.tryFold(residual)).toBeUndefined();
    residual.dispose();
    const plain = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4], convsPerBlock: 1, dropout: 0, l2: 0 });
    expect(FoldedNetwork.tryFold(plain, 'no_such_layer')).toBeUndefined();
    plain.dispose();
  });

  it('leaves no tensor behind per run', () => {
    before = tf.memory().numTensors;
    const model = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4], convsPerBlock: 1, dropout: 0, l2: 0 });
    const folded = FoldedNetwork.tryFold(model, CAM_LAYER)!;
    const x = probeInput(1);
    const held = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const out = folded.run(x);
      tf.dispose([out.output, out.captured!]);
    }
    expect(tf.memory().numTensors).toBe(held);
    x.dispose();
    folded.dispose();
    model.dispose();
  });
});
