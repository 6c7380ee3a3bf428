import * as tf from '@tensorflow/tfjs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { imagesAt } from '../data/preprocessed-dataset.js';
import type { ForwardPass } from '../model/forward-pass.js';
import { ARTIFACT_FILES, type ModelManifest } from '../model/manifest.js';
import { fitTypicality, TypicalityGauge, typicalityLimit, type TypicalityStats } from '../model/typicality.js';

const BATCH = 32;

/** The limit's quantile and margin, and the covariance's ridge, unless asked otherwise. */
export const TYPICALITY_DEFAULTS = { quantile: 0.999, margin: 1.1, ridge: 1e-3 } as const;

/** Some preprocessed images: `indices` into `pixels` (n × size × size). */
export interface ImageSelection {
  pixels: Uint8Array;
  indices: readonly number[];
}

/** The statistics and what the manifest records of them, but the folder they were fitted on. */
export interface FittedTypicality {
  stats: TypicalityStats;
  limit: number;
  fittedOn: { images: number; quantile: number; margin: number; ridge: number };
  heldOut?: { set: string; images: number; refused: number };
}

/**
 * Fits the statistics on the training images' views through a model's forward pass, sets the
 * limit from their distances as served (the mean over an image's views) and counts the held-out
 * images beyond it.
 */
export function fitTypicalityOn(
  forward: ForwardPass,
  train: ImageSelection,
  heldOut: (ImageSelection & { set: string }) | undefined,
  settings: { quantile: number; margin: number; ridge: number },
): FittedTypicality {
  const trainViews = viewVectors(forward, train);
  const stats = fitTypicality(trainViews.flat(), settings.ridge);
  const limit = typicalityLimit(servedDistances(stats, trainViews), settings.quantile, settings.margin);
  const refused = heldOut ? servedDistances(stats, viewVectors(forward, heldOut)).filter((distance) => distance > limit).length : 0;
  return {
    stats,
    limit,
    fittedOn: { images: train.indices.length, ...settings },
    ...(heldOut ? { heldOut: { set: heldOut.set, images: heldOut.indices.length, refused } } : {}),
  };
}

/** Writes `typicality.json` into an artifact folder and records the check in its manifest (which the caller writes). */
export async function writeTypicality(dir: string, manifest: ModelManifest, fitted: FittedTypicality, dataDir: string, command?: string): Promise<void> {
  await writeFile(path.join(dir, ARTIFACT_FILES.typicality), JSON.stringify(fitted.stats));
  manifest.typicality = {
    limit: fitted.limit,
    fittedOn: { dir: dataDir, ...fitted.fittedOn },
    ...(fitted.heldOut ? { heldOut: fitted.heldOut } : {}),
    ...(command ? { command } : {}),
  };
}

/** Per selected image, the pooled feature vector of each of its views (the image, its mirror). */
function viewVectors(forward: ForwardPass, { pixels, indices }: ImageSelection): Float32Array[][] {
  const size = forward.inputSize;
  const out: Float32Array[][] = [];
  for (let start = 0; start < indices.length; start += BATCH) {
    const batch = indices.slice(start, start + BATCH);
    const vectors = forward.featureVectors(imagesAt(pixels, batch, size), batch.length);
    const perImage = vectors.length / batch.length;
    const channels = perImage / forward.viewCount;
    for (let i = 0; i < batch.length; i++) {
      out.push(Array.from({ length: forward.viewCount }, (_, v) => vectors.slice(i * perImage + v * channels, i * perImage + (v + 1) * channels)));
    }
  }
  return out;
}

/** Each image's distance as served: through the gauge the forward pass measures with, averaged over its views. */
function servedDistances(stats: TypicalityStats, perImage: readonly Float32Array[][]): Float32Array {
  const gauge = new TypicalityGauge(stats);
  try {
    return tf.tidy(() => {
      const views = perImage[0]?.length ?? 0;
      const perView = Array.from({ length: views }, (_, v) => gauge.distances(tf.tensor2d(perImage.map((image) => Array.from(image[v] as Float32Array)))));
      return Float32Array.from(tf.addN(perView).div(views).dataSync());
    });
  } finally {
    gauge.dispose();
  }
}
