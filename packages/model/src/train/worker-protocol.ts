import type { AugmentationConfig } from './augmentation.js';

/** Messages between the training coordinator and its gradient workers (one wasm backend each). */
export interface WorkerInit {
  type: 'init';
  topology: string;
  /** Shared pixels of every image, n × size × size. */
  pixels: SharedArrayBuffer;
  labels: Int32Array;
  /** Soft targets (n × numClasses) instead of one-hot labels, e.g. outline masks for the locator. */
  targets?: SharedArrayBuffer;
  /**
   * Coarse labels (n × numClasses, 1 for each class a label stands for) of the images whose label
   * is -1: their loss is -log of the probability of the whole set (COARSE_LABELS).
   */
  coarse?: SharedArrayBuffer;
  size: number;
  numClasses: number;
  classWeights: number[];
  /** Per-image loss weights (one per image, multiplying its class weight), e.g. groupBalancedWeights; absent: 1. */
  sampleWeights?: Float32Array;
  /**
   * Outline guidance (outlineGuidanceLoss): outline masks (n × size × size, 255 inside; all 0 for an
   * image without outline) and the weight of the term in the loss.
   */
  outlineGuidance?: { masks: SharedArrayBuffer; weight: number };
  labelSmoothing: number;
  /** Mixup's Beta(alpha, alpha) parameter for class targets; 0 or absent: off. */
  mixup?: number;
  l2: number;
  augmentation: AugmentationConfig;
  backend?: 'tensorflow' | 'wasm' | 'cpu';
}

export interface WorkerStep {
  type: 'step';
  id: number;
  weights: Float32Array[];
  indices: Int32Array;
  seed: number;
}

export interface WorkerPredict {
  type: 'predict';
  id: number;
  weights: Float32Array[];
  indices: Int32Array;
}

export type WorkerRequest = WorkerInit | WorkerStep | WorkerPredict;

export interface StepResult {
  type: 'step';
  id: number;
  /** Gradients of the shard's mean loss, in trainableWeights order. */
  grads: Float32Array[];
  /** Non-trainable weights (batch-norm statistics) after the step, in nonTrainableWeights order. */
  nonTrainable: Float32Array[];
  loss: number;
  correct: number;
  count: number;
}

export interface PredictResult {
  type: 'predict';
  id: number;
  probabilities: Float32Array;
}

export type WorkerReply = { type: 'ready'; backend: string } | StepResult | PredictResult | { type: 'error'; id?: number; message: string };
