import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, type LoadedModel, type Prediction } from '../packages/model/src/index.js';
import { mriSlices } from './api-fixtures.js';
import { REPO_ROOT } from './helpers/index.js';

/** What a prediction answers, without its timings. */
const answer = ({ label, probabilities, box, peak, heatmap }: Prediction) => ({ label, probabilities, box, peak, heatmap: heatmap && Array.from(heatmap.data) });

/**
 * A worker runs WORKER_CONCURRENCY jobs on one loaded model: their preprocessing (sharp, off the event
 * loop) interleaves with each other's forward passes. Each must get the answer it gets alone.
 */
describe('predictions run side by side on one model', () => {
  let model: LoadedModel;
  const scans = [...mriSlices('yes', 4), ...mriSlices('no', 4)];

  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
    model = await loadModel(path.join(REPO_ROOT, 'models/tumor-binary'));
  });
  afterAll(() => model.dispose());

  it('each answer as it is alone, heatmap and box included, and no tensor left behind', async () => {
    const alone: ReturnType<typeof answer>[] = [];
    for (const scan of scans) alone.push(answer(await model.predict(scan.bytes)));
    const tensors = tf.memory().numTensors;

    // Every scan twice, in another order, all at once; half of them without a heatmap.
    const order = [...scans.keys(), ...scans.keys()].reverse();
    const together = await Promise.all(order.map((i, n) => model.predict(scans[i]!.bytes, { heatmap: n % 2 === 0 })));

    together.forEach((prediction, n) => {
      const expected = alone[order[n]!]!;
      if (n % 2 === 0) expect(answer(prediction)).toEqual(expected);
      else expect([prediction.label, prediction.probabilities, prediction.heatmap]).toEqual([expected.label, expected.probabilities, undefined]);
    });
    expect(new Set(alone.map((a) => a.label))).toEqual(new Set(['tumor', 'no_tumor']));
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
