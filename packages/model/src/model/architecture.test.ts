import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { buildClassifier, CAM_LAYER } from './architecture.js';

const SIZE = 16;

function outputOf(model: tf.LayersModel, layer: string, x: tf.Tensor4D): Float32Array {
  const probe = tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output as tf.SymbolicTensor });
  return tf.tidy(() => (probe.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

describe('buildClassifier with residual blocks', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('projects the shortcut only where the width changes', () => {
    const model = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4, 4, 8], convsPerBlock: 2, dropout: 0, l2: 0, residual: true });
    const names = model.layers.map((layer) => layer.name);
    expect(names.filter((name) => name.endsWith('_add'))).toEqual(['b0_add', 'b1_add', 'b2_add']);
    expect(names.filter((name) => name.endsWith('_shortcut'))).toEqual(['b0_shortcut', 'b2_shortcut']);
    const plain = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4, 4, 8], convsPerBlock: 2, dropout: 0, l2: 0 });
    expect(plain.layers.some((layer) => layer.getClassName() === 'Add')).toBe(false);
    model.dispose();
    plain.dispose();
  });

  it('passes a block its input unchanged when its own path gives zero', () => {
    const model = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4, 4], convsPerBlock: 2, dropout: 0, l2: 0, residual: true });
    // A zero last convolution makes the last batch norm output its shift, zero at initialisation:
    // the block then returns ReLU(its input), which is its input, the ReLU'd and pooled first block.
    const last = model.getLayer('b1_conv1');
    last.setWeights(last.getWeights().map((w) => tf.zerosLike(w)));
    const x = tf.randomUniform([2, SIZE, SIZE, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const blockInput = outputOf(model, 'b0_pool', x);
    const blockOutput = outputOf(model, CAM_LAYER, x);
    expect(blockOutput).toHaveLength(blockInput.length);
    expect(blockInput.some((v) => v > 0)).toBe(true);
    blockOutput.forEach((v, i) => expect(v).toBeCloseTo(blockInput[i] as number, 5));
    x.dispose();
    model.dispose();
  });
});
