import * as tf from '@tensorflow/tfjs';
import { createRandom, shuffleInPlace } from '../util/random.js';
import type { EpochRecord } from './training-loop.js';

/** Classifier features [n, side, side, channels] and outline targets [n, side·side] (rows sum to 1, or 0 without outline inside). */
export interface LocatorExamples {
  features: tf.Tensor4D;
  targets: tf.Tensor2D;
}

export interface HeadFitOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  onEpoch?: (record: EpochRecord, isBest: boolean) => void;
}

/** The examples with the target rows read once, for scoring every epoch. */
interface Scored {
  examples: LocatorExamples;
  rows: number[][];
  /** Rows with some target inside the model input. */
  located: number;
}

function scored(examples: LocatorExamples): Scored {
  const rows = examples.targets.arraySync();
  return { examples, rows, located: rows.filter((row) => row.some((v) => v > 0)).length };
}

/** Mean cross-entropy between the target distributions and the head's maps, and the share of peaks on a target cell. */
function score(head: tf.LayersModel, { examples, rows, located }: Scored): { loss: number; hit: number } {
  return tf.tidy(() => {
    const maps = head.predict(examples.features) as tf.Tensor2D;
    const loss = tf.metrics.categoricalCrossentropy(examples.targets, maps).mean().dataSync()[0] as number;
    const peaks = maps.argMax(1).dataSync();
    const hits = rows.filter((row, i) => (row[peaks[i] as number] as number) > 0).length;
    return { loss, hit: located === 0 ? 0 : hits / located };
  });
}

/**
 * Fits a locator head with Adam on seeded shuffled mini-batches, keeping the weights of the epoch
 * with the lowest validation loss (the last epoch's without validation examples). The head is small
 * and reads precomputed features, so this runs on the calling thread.
 */
export function fitLocatorHead(head: tf.LayersModel, train: LocatorExamples, val: LocatorExamples | undefined, options: HeadFitOptions): EpochRecord[] {
  const optimizer = tf.train.adam(options.learningRate);
  const variables = head.trainableWeights.map((w) => w.read() as tf.Variable);
  const random = createRandom(options.seed);
  const order = Array.from({ length: train.features.shape[0] }, (_, i) => i);
  const history: EpochRecord[] = [];
  const fitted = scored(train);
  const held = val ? scored(val) : undefined;
  let best = { loss: Infinity, weights: head.getWeights().map((w) => w.clone()) };
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const started = performance.now();
      shuffleInPlace(order, random);
      for (let start = 0; start < order.length; start += options.batchSize) {
        tf.tidy(() => {
          const batch = tf.tensor1d(order.slice(start, start + options.batchSize), 'int32');
          const features = tf.gather(train.features, batch);
          const targets = tf.gather(train.targets, batch);
          optimizer.minimize(() => tf.metrics.categoricalCrossentropy(targets, head.apply(features, { training: true }) as tf.Tensor2D).mean() as tf.Scalar, false, variables);
        });
      }
      const fit = score(head, fitted);
      const check = held ? score(head, held) : { loss: NaN, hit: NaN };
      const isBest = !held || check.loss < best.loss;
      if (isBest) {
        tf.dispose(best.weights);
        best = { loss: check.loss, weights: head.getWeights().map((w) => w.clone()) };
      }
      const record = { epoch, loss: fit.loss, accuracy: fit.hit, valLoss: check.loss, valAccuracy: check.hit, learningRate: options.learningRate, seconds: (performance.now() - started) / 1000 };
      history.push(record);
      options.onEpoch?.(record, isBest);
    }
    head.setWeights(best.weights);
  } finally {
    tf.dispose(best.weights);
    optimizer.dispose();
  }
  return history;
}
