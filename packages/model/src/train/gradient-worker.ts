import * as tf from '@tensorflow/tfjs';
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../backend/index.js';
import { inputBatch } from '../data/model-input.js';
import { createRandom } from '../util/random.js';
import { CAM_LAYER, CLASSIFIER_LAYER } from '../model/architecture.js';
import { augmentBatch, augmentWithMasks } from './augmentation.js';
import { seedDropout } from './dropout-seed.js';
import { mixBatch } from './mixup.js';
import { outlineGuidanceLoss } from './outline-guidance.js';
import type { PredictResult, StepResult, WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.js';

interface State {
  init: WorkerInit;
  model: tf.LayersModel;
  pixels: Uint8Array;
  /** With outline guidance: the model with its activation map as a second output, the classifier's kernel, and the masks. */
  guide?: { model: tf.LayersModel; kernel: tf.LayerVariable; masks: Uint8Array; weight: number };
}

let state: State | undefined;
const port = parentPort;
if (!port) throw new Error('gradient-worker must run in a worker thread');

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(reply, transfer);
}

function loadWeights(model: tf.LayersModel, weights: Float32Array[]): void {
  tf.tidy(() => model.weights.forEach((w, i) => w.write(tf.tensor(weights[i] as Float32Array, w.shape as number[]))));
}

function batchImages(s: State, indices: Int32Array, pixels = s.pixels): tf.Tensor4D {
  return tf.tensor4d(inputBatch(pixels, indices, s.init.size), [indices.length, s.init.size, s.init.size, 1]);
}

/** The augmented batch, with its outline masks moved alike when the run is guided. */
function augmentedBatch(s: State, indices: Int32Array, random: () => number): { images: tf.Tensor4D; masks?: tf.Tensor4D } {
  const images = batchImages(s, indices);
  if (!s.guide) return { images: augmentBatch(images, s.init.augmentation, random) };
  return augmentWithMasks(images, batchImages(s, indices, s.guide.masks), s.init.augmentation, random);
}

/** Class probabilities in training mode, and the activation map when the run is guided. */
function applyTraining(s: State, x: tf.Tensor4D): { probs: tf.Tensor2D; features?: tf.Tensor4D } {
  if (!s.guide) return { probs: s.model.apply(x, { training: true }) as tf.Tensor2D };
  const [features, probs] = s.guide.model.apply(x, { training: true }) as [tf.Tensor4D, tf.Tensor2D];
  return { probs, features };
}

function softTargets(s: State, indices: Int32Array): tf.Tensor2D | undefined {
  if (!s.init.targets) return undefined;
  const k = s.init.numClasses;
  const all = new Float32Array(s.init.targets);
  const rows = new Float32Array(indices.length * k);
  indices.forEach((index, i) => rows.set(all.subarray(index * k, (index + 1) * k), i * k));
  return tf.tensor2d(rows, [indices.length, k]);
}

/** The batch's coarse-label masks and which rows have one, or undefined when no image of the run has one. */
function coarseRows(s: State, indices: Int32Array): { mask: tf.Tensor2D; isCoarse: tf.Tensor1D } | undefined {
  if (!s.init.coarse) return undefined;
  const k = s.init.numClasses;
  const all = new Uint8Array(s.init.coarse);
  const rows = new Float32Array(indices.length * k);
  indices.forEach((index, i) => rows.set(all.subarray(index * k, (index + 1) * k), i * k));
  const isCoarse = Array.from(indices, (index) => ((s.init.labels[index] as number) < 0 ? 1 : 0));
  return { mask: tf.tensor2d(rows, [indices.length, k]), isCoarse: tf.tensor1d(isCoarse) };
}

/** Per row: `ifOne` where `select` is 1, `ifZero` where it is 0. */
function blend(select: tf.Tensor, ifOne: tf.Tensor, ifZero: tf.Tensor): tf.Tensor {
  return ifOne.mul(select).add(ifZero.mul(tf.scalar(1).sub(select)));
}

function smoothedOneHot(init: WorkerInit, labels: number[]): tf.Tensor2D {
  const k = init.numClasses;
  return tf.oneHot(tf.tensor1d(labels, 'int32'), k).mul(1 - init.labelSmoothing).add(init.labelSmoothing / k);
}

function step(s: State, msg: Extract<WorkerRequest, { type: 'step' }>): StepResult {
  loadWeights(s.model, msg.weights);
  const { init, model } = s;
  const labels = Array.from(msg.indices, (i) => init.labels[i] as number);
  // A coarse-labelled image (-1) gets a placeholder class for the one-hot target; its loss and hit come from its mask.
  const targetLabels = labels.map((l) => Math.max(l, 0));
  const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kernels = trainable.filter((v) => v.name.includes('kernel'));
  let correct = 0;
  seedDropout(model, msg.seed);
  const { value, grads } = tf.variableGrads(() => {
    const random = createRandom(msg.seed);
    const { images: augmented, masks } = augmentedBatch(s, msg.indices, random);
    const soft = softTargets(s, msg.indices);
    // Soft targets (the locator's masks) are never mixed; `correct` still counts against each image's own label.
    const { x, target } = soft ? { x: augmented, target: soft } : mixBatch(augmented, smoothedOneHot(init, targetLabels), init.mixup ?? 0, random);
    const { probs, features } = applyTraining(s, x);
    const top = tf.oneHot(probs.argMax(1), init.numClasses);
    // With soft targets a prediction is right when its top position has target mass (the pointing game).
    const labelHits = soft ? soft.mul(top).sum(1).greater(0) : tf.equal(probs.argMax(1), tf.tensor1d(targetLabels, 'int32'));
    const coarse = coarseRows(s, msg.indices);
    // A coarse label is met when the top class is one it stands for.
    // Blended arithmetically: tf.where (the wasm Select kernel) hung this step on the 4-class data.
    const hits = coarse ? blend(coarse.isCoarse, coarse.mask.mul(top).sum(1).greater(0).toFloat(), labelHits.toFloat()) : labelHits;
    correct = hits.sum().dataSync()[0] as number;
    const perImageWeight = (k: number) => init.sampleWeights?.[msg.indices[k] as number] ?? 1;
    const weights = tf.tensor1d(labels.map((l, k) => (l < 0 ? 1 : (init.classWeights[l] as number)) * perImageWeight(k)));
    const crossEntropy = target.mul(probs.clipByValue(1e-7, 1).log()).sum(1).neg();
    const perImage = coarse ? blend(coarse.isCoarse, probs.mul(coarse.mask).sum(1).clipByValue(1e-7, 1).log().neg(), crossEntropy) : crossEntropy;
    const dataLoss = perImage.mul(weights).mean();
    const decay = kernels.reduce((acc: tf.Scalar, k) => acc.add(k.square().sum()), tf.scalar(0));
    const loss = dataLoss.add(decay.mul(init.l2)) as tf.Scalar;
    if (!s.guide || !features || !masks) return loss;
    const classifierKernel = s.guide.kernel.read() as tf.Tensor2D;
    // Images without an outline have an empty mask and add 0: the mean is over the whole shard, like the data loss.
    return loss.add(outlineGuidanceLoss(features, classifierKernel, targetLabels, masks).mean().mul(s.guide.weight)) as tf.Scalar;
  }, trainable);
  const loss = value.dataSync()[0] as number;
  value.dispose();
  const gradArrays = trainable.map((v) => {
    const g = grads[v.name] as tf.Tensor;
    const data = g.dataSync() as Float32Array;
    g.dispose();
    return data.slice();
  });
  const nonTrainable = model.nonTrainableWeights.map((w) => (w.read().dataSync() as Float32Array).slice());
  return { type: 'step', id: msg.id, grads: gradArrays, nonTrainable, loss, correct, count: msg.indices.length };
}

function predict(s: State, msg: Extract<WorkerRequest, { type: 'predict' }>): PredictResult {
  loadWeights(s.model, msg.weights);
  const probabilities = tf.tidy(() => (s.model.predict(batchImages(s, msg.indices)) as tf.Tensor).dataSync() as Float32Array);
  return { type: 'predict', id: msg.id, probabilities: probabilities.slice() };
}

port.on('message', (msg: WorkerRequest) => {
  void (async () => {
    try {
      if (msg.type === 'init') {
        const backend = await initBackend({ prefer: msg.backend });
        const model = await tf.models.modelFromJSON({ modelTopology: JSON.parse(msg.topology) as tf.io.ModelJSON["modelTopology"] });
        const guide = msg.outlineGuidance && {
          model: tf.model({ inputs: model.inputs, outputs: [model.getLayer(CAM_LAYER).output as tf.SymbolicTensor, model.outputs[0]!] }),
          kernel: model.getLayer(CLASSIFIER_LAYER).trainableWeights[0]!,
          masks: new Uint8Array(msg.outlineGuidance.masks),
          weight: msg.outlineGuidance.weight,
        };
        state = { init: msg, model, pixels: new Uint8Array(msg.pixels), ...(guide ? { guide } : {}) };
        post({ type: 'ready', backend: backend.name });
        return;
      }
      if (!state) throw new Error('worker not initialised');
      const reply = msg.type === 'step' ? step(state, msg) : predict(state, msg);
      const transfer = reply.type === 'step' ? reply.grads.map((g) => g.buffer as ArrayBuffer) : [reply.probabilities.buffer as ArrayBuffer];
      post(reply, transfer);
    } catch (error) {
      post({ type: 'error', id: 'id' in msg ? msg.id : undefined, message: (error as Error).stack ?? String(error) });
    }
  })();
});
