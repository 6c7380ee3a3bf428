import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { inputBatch } from '../data/model-input.js';
import { buildClassifier, CAM_LAYER, CLASSIFIER_LAYER, DEFAULT_ARCHITECTURE } from '../model/architecture.js';
import { TASK_CLASSES } from '../model/tasks.js';
import { coarseLabelMasks } from './coarse-labels.js';
import { GradientWorkerPool } from './gradient-worker-pool.js';
import { outlineGuidanceLoss } from './outline-guidance.js';
import { readWeights } from './training-loop.js';
import type { WorkerInit } from './worker-protocol.js';

const SIDE = 16;

/** A tiny classifier, deterministic pixels for `count` images, and one gradient worker without augmentation. */
async function tinyStep(count: number, init: Pick<WorkerInit, 'labels' | 'numClasses' | 'classWeights'> & Partial<WorkerInit>) {
  await initBackend();
  const model = buildClassifier({ ...DEFAULT_ARCHITECTURE, filters: [4, 8], convsPerBlock: 1, inputSize: SIDE, numClasses: init.numClasses, dropout: 0, l2: 0 });
  const shared = new SharedArrayBuffer(count * SIDE * SIDE);
  const pixels = new Uint8Array(shared);
  pixels.forEach((_, i) => (pixels[i] = (i * 37 + (i >> 5) * 11) % 256));
  const pool = await GradientWorkerPool.start(1, {
    type: 'init',
    topology: JSON.stringify(model.toJSON(null, false)),
    pixels: shared,
    size: SIDE,
    labelSmoothing: 0,
    l2: 0,
    augmentation: { flip: false, rotateDeg: 0, scale: 0, shift: 0, brightness: 0, contrast: 0, gamma: 0, sharpen: 0, noise: 0 },
    ...init,
  });
  const indices = Int32Array.from({ length: count }, (_, i) => i);
  const withMaps = tf.model({ inputs: model.inputs, outputs: [model.getLayer(CAM_LAYER).output as tf.SymbolicTensor, model.outputs[0]!] });
  return {
    model,
    /** One step on every image, and the probabilities and activation maps the model gives them in training mode. */
    async step() {
      const [result] = await pool.step(readWeights(model), [indices], 7);
      const [features, probs] = tf.tidy(() => {
        const x = tf.tensor4d(inputBatch(pixels, indices, SIDE), [count, SIDE, SIDE, 1]);
        const [maps, p] = withMaps.apply(x, { training: true }) as [tf.Tensor4D, tf.Tensor2D];
        return [maps.arraySync(), p.arraySync()];
      });
      return { result: result!, probs, features };
    },
    async close() {
      await pool.close();
      model.dispose();
    },
  };
}

describe('a gradient worker step', () => {
  describe('with coarse labels', () => {
    const classes = TASK_CLASSES['tumor-type'];
    const labels = ['glioma', 'no_tumor', 'tumor', 'tumor', 'meningioma', 'pituitary'];
    let fixture: Awaited<ReturnType<typeof tinyStep>>;
    beforeAll(async () => {
      fixture = await tinyStep(labels.length, {
        labels: Int32Array.from(labels, (label) => classes.indexOf(label)),
        coarse: coarseLabelMasks('tumor-type', labels.map((label) => ({ label })), classes)!,
        numClasses: 4,
        classWeights: [1, 1, 1, 1],
      });
    });
    afterAll(() => fixture.close());

    it('scores a coarse label by the probability of its whole set, a class label by its own', async () => {
      const { result, probs } = await fixture.step();
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
      expect(result.loss).toBeCloseTo(perImage.reduce((a, b) => a + b, 0) / labels.length, 4);
      expect(result.correct).toBe(hits);
      // The set's probability is larger than any one type's, so a coarse label costs less than a guessed type would.
      expect(perImage[2]).toBeLessThan(-Math.log(Math.max(...tumourTypes.map((c) => probs[2]![c]!))));
    });
  });

  describe('with per-image weights', () => {
    const labels = Int32Array.from([0, 1, 0, 1]);
    const classWeights = [1, 3];
    const sampleWeights = Float32Array.from([2, 0, 1, 0.5]);
    let fixture: Awaited<ReturnType<typeof tinyStep>>;
    beforeAll(async () => {
      fixture = await tinyStep(labels.length, { labels, numClasses: 2, classWeights, sampleWeights });
    });
    afterAll(() => fixture.close());

    it('multiplies the loss of each image by its class weight and its own weight', async () => {
      const { result, probs } = await fixture.step();
      const expected = Array.from(labels, (l, i) => -Math.log(probs[i]![l]!) * classWeights[l]! * sampleWeights[i]!);
      expect(result.loss).toBeCloseTo(expected.reduce((a, b) => a + b, 0) / labels.length, 4);
    });
  });

  describe('with outline guidance', () => {
    const labels = Int32Array.from([0, 1, 0]);
    const weight = 0.5;
    // Image 0 is outlined in its top-left quarter, image 2 in a band on its right; image 1 has none.
    const masks = new Uint8Array(labels.length * SIDE * SIDE);
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        if (y < SIDE / 2 && x < SIDE / 2) masks[y * SIDE + x] = 255;
        if (x >= SIDE - 4) masks[2 * SIDE * SIDE + y * SIDE + x] = 255;
      }
    }
    let fixture: Awaited<ReturnType<typeof tinyStep>>;
    beforeAll(async () => {
      const shared = new SharedArrayBuffer(masks.byteLength);
      new Uint8Array(shared).set(masks);
      fixture = await tinyStep(labels.length, { labels, numClasses: 2, classWeights: [1, 1], outlineGuidance: { masks: shared, weight } });
    });
    afterAll(() => fixture.close());

    it("adds the weighted guidance loss of the classifier's own activation maps to the data loss", async () => {
      const { result, probs, features } = await fixture.step();
      const crossEntropy = Array.from(labels, (l, i) => -Math.log(probs[i]![l]!)).reduce((a, b) => a + b, 0) / labels.length;
      const guidance = tf.tidy(() => {
        const kernel = fixture.model.getLayer(CLASSIFIER_LAYER).getWeights()[0] as tf.Tensor2D;
        const m = tf.tensor4d(inputBatch(masks, [0, 1, 2], SIDE), [labels.length, SIDE, SIDE, 1]);
        return outlineGuidanceLoss(tf.tensor4d(features), kernel, Array.from(labels), m).arraySync();
      });
      expect(guidance[1]).toBeCloseTo(0, 10);
      expect(guidance[0]).toBeGreaterThan(0);
      expect(result.loss).toBeCloseTo(crossEntropy + (weight * guidance.reduce((a, b) => a + b, 0)) / labels.length, 4);
    });
  });
});
