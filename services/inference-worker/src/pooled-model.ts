import { performance } from 'node:perf_hooks';
import {
  basePieces,
  combinePieces,
  meanOfMembers,
  predictionFrom,
  preprocessShared,
  rotationPieces,
  type ForwardPlan,
  type LoadedModel,
  type ModelManifest,
  type Prediction,
  type PredictOptions,
} from '@btd/model';
import type { ModelThreadPool } from './model-thread-pool.js';

/**
 * A model loaded on every thread of a {@link ModelThreadPool}. A prediction preprocesses the image
 * once on the calling thread (once for all models given the same buffer), then spreads the forward
 * pass over the pool: each classifier of an ensemble on the image and on its mirror as two pieces
 * (the first with the locator head on its features), then, for an uncertain image, each
 * classifier's rotated copies per angle, each piece on the least busy thread. An image that takes
 * the rotated copies (three times the base work for the two-member `tumor-type` ensemble) so no
 * longer waits for one thread to do it all.
 */
export class PooledModel implements LoadedModel {
  private disposed = false;

  constructor(
    private readonly pool: ModelThreadPool,
    private readonly model: number,
    readonly manifest: ModelManifest,
    /** How the model's forward pass splits into pieces. */
    readonly plan: ForwardPlan,
  ) {}

  async predict(image: Uint8Array, options: PredictOptions = {}): Promise<Prediction> {
    if (this.disposed) throw new Error(`model ${this.manifest.name}@${this.manifest.version} is disposed`);
    const withMaps = options.heatmap !== false;
    // Class activation maps depend on the final probabilities; only a locator's maps come from a piece.
    if (withMaps && this.plan.locator === 'none') return this.pool.predictWhole(this.model, image, options);
    const t0 = performance.now();
    const input = await preprocessShared(image, this.manifest.preprocessing, options.frame);
    const t1 = performance.now();
    const base = await this.pool.runPieces(this.model, input.pixels, basePieces(this.plan, withMaps, true));
    const rotated = await this.pool.runPieces(this.model, input.pixels, rotationPieces(this.plan, meanOfMembers(this.plan, base)));
    const out = combinePieces(this.plan, base, rotated);
    return predictionFrom(this.manifest, input, out, options, { preprocessMs: t1 - t0, modelMs: performance.now() - t1 });
  }

  /** Frees the model on the pool's threads. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool.unload(this.model);
  }
}
