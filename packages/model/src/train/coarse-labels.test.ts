import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { inputBatch } from '../data/model-input.js';
import { buildClassifier, DEFAULT_ARCHITECTURE } from '../model/architecture.js';
import { classOfFolder, labelOfFolderAllowingCoarse, TASK_CLASSES } from '../model/tasks.js';
import { coarseLabelMasks } from './coarse-labels.js';
import { GradientWorkerPool } from './gradient-worker-pool.js';
import { readWeights } from './training-loop.js';

const classes = TASK_CLASSES['tumor-type'];
const SIDE = 16;

describe('coarse labels for extra training data', () => {
  it('reads a yes folder as any tumour type for tumor-type extra data only', () => {
    expect(labelOfFolderAllowingCoarse('tumor-type', 'yes')).toBe('tumor');
    expect(labelOfFolderAllowingCoarse('tumor-type', 'tumor')).toBe('tumor');
    expect(labelOfFolderAllowingCoarse('tumor-type', 'no')).toBe('no_tumor');
    expect(labelOfFolderAllowingCoarse('tumor-type', 'glioma')).toBe('glioma');
    expect(labelOfFolderAllowingCoarse('tumor-binary', 'yes')).toBe('tumor');
    expect(classOfFolder('tumor-type', 'yes')).toBeUndefined();
  });

  it('masks the classes a coarse label stands for, and nothing when there is none', () => {
    const files = ['glioma', 'tumor', 'no_tumor'].map((label) => ({ label }));
    expect(Array.from(new Uint8Array(coarseLabelMasks('tumor-type', files, classes)!))).toEqual([0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
    expect(coarseLabelMasks('tumor-type', [{ label: 'glioma' }], classes)).toBeUndefined();
  });

  describe('in a training step', () => {
    const labels = ['glioma', 'no_tumor', 'tumor', 'tumor', 'meningioma', 'pituitary'];
    let model: tf.LayersModel;
    let pool: GradientWorkerPool;
    let pixels: Uint8Array;

    beforeAll(async () => {
      await initBackend();
      model = buildClassifier({ ...DEFAULT_ARCHITECTURE, filters: [4, 8], convsPerBlock: 1, inputSize: SIDE, numClasses: 4, dropout: 0, l2: 0 });
      const shared = new SharedArrayBuffer(labels.length * SIDE * SIDE);
      pixels = new Uint8Array(shared);
      pixels.forEach((_, i) => (pixels[i] = (i * 37 + (i >> 5) * 11) % 256));
      pool = await GradientWorkerPool.start(1, {
        type: 'init',
        topology: JSON.stringify(model.toJSON(null, false)),
        pixels: shared,
        labels: Int32Array.from(labels, (label) => classes.indexOf(label)),
        coarse: coarseLabelMasks('tumor-type', labels.map((label) => ({ label })), classes)!,
        size: SIDE,
        numClasses: 4,
        classWeights: [1, 1, 1, 1],
        labelSmoothing: 0,
        l2: 0,
        augmentation: { flip: false, rotateDeg: 0, scale: 0, shift: 0, brightness: 0, contrast: 0 },
      });
    });
    afterAll(async () => {
      await pool.close();
      model.dispose();
    });

    it('scores a coarse label by the probability of its whole set, a class label by its own', async () => {
      const indices = Int32Array.from(labels.keys());
      const [result] = await pool.step(readWeights(model), [indices], 7);
      const probs = tf.tidy(() => {
        const x = tf.tensor4d(inputBatch(pixels, indices, SIDE), [labels.length, SIDE, SIDE, 1]);
        return (model.apply(x, { training: true }) as tf.Tensor2D).arraySync();
      });
      const tumourTypes = [0, 1, 2];
      const perImage = labels.map((label, i) => {
        const row = probs[i]!;
        const p = label === 'tumor' ? tumourTypes.reduce((s, c) => s + row[c]!, 0) : row[classes.indexOf(label)]!;
        return -Math.log(p);
      });
      const hits = labels.filter((label, i) => {
        const top = probs[i]!.indexOf(Math.max(...probs[i]!));
        return label === 'tumor' ? tumourTypes.includes(top) : top === classes.indexOf(label);
      }).length;
      expect(result!.loss).toBeCloseTo(perImage.reduce((a, b) => a + b, 0) / labels.length, 4);
      expect(result!.correct).toBe(hits);
      // The set's probability is larger than any one type's, so a coarse label costs less than a guessed type would.
      expect(perImage[2]).toBeLessThan(-Math.log(Math.max(...tumourTypes.map((c) => probs[2]![c]!))));
    });
  });
});
