import * as tf from '@tensorflow/tfjs';
import { toModelInput } from '../data/model-input.js';
import { CAM_LAYER, CLASSIFIER_LAYER } from './architecture.js';
import { FoldedNetwork, withCapture } from './folded-network.js';
import { mergeRotated, rotatedCopies, temperedProbabilities, uncertainImages, type ForwardPiece, type ForwardPlan, type LocatorKind, type MirrorView, type PieceResult } from './forward-pieces.js';
import { isLocatorHead } from './locator.js';
import { averageBlocks, averageMirrorViews, mirrorCount, mirrorViews, rotatedViews, type TestTimeViews } from './test-time-views.js';
import { pooledFeatures, TypicalityGauge, type TypicalityStats } from './typicality.js';

/** Probabilities and class activation maps for a batch of preprocessed images. */
export interface ForwardResult {
  /** count × classes. */
  probabilities: Float32Array;
  /** count × camSide × camSide, non-negative, unnormalised; for the class asked for each image. */
  cams: Float32Array;
  camSide: number;
  /** count: each image's distance to the training scans (see `typicality.ts`), when the model has their statistics. */
  atypicality?: Float32Array;
}

/** A network ready to run: its outputs are [captured layer, output] or [output]. */
interface Runner {
  predict: (x: tf.Tensor4D) => tf.Tensor[];
  /** The folded copy it runs, when the network folds. */
  folded?: FoldedNetwork;
}

/** One classifier: its runner gives the last block's features and the probabilities in one pass. */
interface Member extends Runner {
  model: tf.LayersModel;
  classifierKernel: tf.Tensor2D;
}

/** Runs the folded copy of `model` when it folds, else the model itself through the layers API. */
function runnerFor(model: tf.LayersModel, capture?: string): Runner {
  const folded = FoldedNetwork.tryFold(model, capture);
  if (folded) {
    return { folded, predict: (x) => { const out = folded.run(x); return out.captured ? [out.captured, out.output] : [out.output]; } };
  }
  const graph = withCapture(model, capture);
  return { predict: (x) => [graph.predict(x) as tf.Tensor | tf.Tensor[]].flat() };
}

/**
 * Refuses an ensemble whose members differ in input or activation-map size (their maps could not be
 * averaged). Checked on the models before anything is folded, so that a refusal leaves no tensors behind.
 */
function checkMembersAlike(models: readonly tf.LayersModel[]): void {
  const sides = new Set(models.map((model) => JSON.stringify([model.inputs[0]!.shape, model.getLayer(CAM_LAYER).outputShape])));
  if (sides.size > 1) throw new Error('ensemble members must share their input size and activation-map size');
}

/**
 * Runs a classifier, or an ensemble of classifiers whose probabilities are averaged, and reads the
 * class activation map. With global average pooling followed by a dense layer, Grad-CAM's channel
 * weights are exactly the dense kernel's column for the class, so the map costs one matrix product
 * and no backward pass; an ensemble's map is the mean of its members' maps.
 */
export class ForwardPass {
  private readonly members: Member[];
  private readonly locatorPredict?: Runner;
  private readonly gauge?: TypicalityGauge;
  /** What splitting this forward pass into pieces needs to know; the same for every copy of the model. */
  readonly plan: ForwardPlan;

  constructor(
    models: tf.LayersModel | readonly tf.LayersModel[],
    /** The copies of each image whose probabilities are averaged. */
    private readonly views: TestTimeViews,
    /**
     * When present, its map of where the tumour is replaces the class activation map: a head on the
     * first classifier's last-block features, or (older artifacts) a network of its own.
     */
    private readonly locator?: tf.LayersModel,
    /** Temperature applied to the (averaged) probabilities; 1 leaves them as they are. */
    private readonly temperature = 1,
    /** The training scans' statistics, with which each image's distance to them is measured. */
    typicality?: TypicalityStats,
  ) {
    const list = Array.isArray(models) ? models : [models as tf.LayersModel];
    if (list.length === 0) throw new Error('a forward pass needs at least one classifier');
    checkMembersAlike(list);
    const runnersMade: Runner[] = [];
    const fold = (model: tf.LayersModel, capture?: string): Runner => {
      const runner = runnerFor(model, capture);
      runnersMade.push(runner);
      return runner;
    };
    try {
      if (locator) this.locatorPredict = fold(locator);
      this.members = list.map((model) => ({ model, ...fold(model, CAM_LAYER), classifierKernel: model.getLayer(CLASSIFIER_LAYER).getWeights()[0] as tf.Tensor2D }));
      if (typicality) this.gauge = gaugeFor(typicality, list[0]!);
    } catch (error) {
      // The folded copies hold tensors of their own, which no one could dispose after a refusal.
      for (const runner of runnersMade) runner.folded?.dispose();
      throw error;
    }
    const classes = this.members[0]!.classifierKernel.shape[1];
    const kind: LocatorKind = !locator ? 'none' : isLocatorHead(locator, list[0]!) ? 'head' : 'network';
    this.plan = { members: this.members.length, classes, locator: kind, views, temperature };
  }

  get inputSize(): number {
    return this.members[0]!.model.inputs[0]!.shape[1] as number;
  }

  /** Views of each image the classifiers run on: the image and, with test-time flips, its mirror. */
  get viewCount(): number {
    return mirrorCount(this.views.flip);
  }

  /** Number of classifiers averaged. */
  get memberCount(): number {
    return this.members.length;
  }

  /**
   * @param pixels count × size × size grey pixels (0–255)
   * @param camClass per image: the class index whose map to return, or -1 for the predicted class
   */
  run(pixels: Uint8Array, count: number, camClass: number | number[]): ForwardResult {
    const size = this.inputSize;
    return tf.tidy(() => {
      const x = tf.tensor4d(toModelInput(pixels), [count, size, size, 1]);
      let located: { cams: Float32Array; camSide: number } | undefined;
      let atypicality: Float32Array | undefined;
      const outputs = this.members.map((m, k) => {
        const views = m.predict(this.viewsOf(x));
        if (k === 0 && this.plan.locator === 'head') located = this.locateOnFeatures(views[0] as tf.Tensor4D);
        if (k === 0) atypicality = this.measure(views[0] as tf.Tensor4D);
        return views.map((out) => this.fromViews(out)) as [tf.Tensor4D, tf.Tensor2D];
      });
      const measured = atypicality ? { atypicality } : {};
      const probs = outputs.length === 1 ? outputs[0]![1] : tf.addN(outputs.map(([, p]) => p)).div(outputs.length);
      const classes = probs.shape[1] as number;
      const raw = this.withRotations(x, Float32Array.from(probs.dataSync()));
      const probabilities = temperedProbabilities(this.plan, raw);
      const chosen = Array.from({ length: count }, (_, i) => {
        const c = Array.isArray(camClass) ? (camClass[i] as number) : camClass;
        return c >= 0 ? c : argmax(probabilities.subarray(i * classes, (i + 1) * classes));
      });
      if (located) return { probabilities, ...located, ...measured };
      if (this.plan.locator === 'network') return { probabilities, ...this.locate(x), ...measured };
      const memberCams = outputs.map(([features], k) => {
        const weights = tf.gather(this.members[k]!.classifierKernel, chosen, 1).transpose(); // count × channels
        return tf.relu(features.mul(weights.reshape([count, 1, 1, -1])).sum(3));
      });
      const cams = memberCams.length === 1 ? memberCams[0]! : tf.addN(memberCams).div(memberCams.length);
      return { probabilities, cams: cams.dataSync() as Float32Array, camSide: outputs[0]![0].shape[1], ...measured };
    });
  }

  /**
   * Each image's distance to the training scans, from the first classifier's last-block features
   * of the views `view` names (both stacked, by default; the two distances averaged); undefined
   * for a model without their statistics.
   */
  private measure(features: tf.Tensor4D, view?: MirrorView): Float32Array | undefined {
    if (!this.gauge) return undefined;
    return Float32Array.from(this.fromViews(this.gauge.distances(pooledFeatures(features)), view).dataSync());
  }

  /**
   * Pooled last-block features of the first classifier for each view of each image (count × views
   * × channels, the image's view first): what the typicality statistics are fitted on.
   */
  featureVectors(pixels: Uint8Array, count: number): Float32Array {
    const size = this.inputSize;
    return tf.tidy(() => {
      const x = tf.tensor4d(toModelInput(pixels), [count, size, size, 1]);
      const pooled = pooledFeatures(this.members[0]!.predict(this.viewsOf(x))[0] as tf.Tensor4D);
      const perImage = tf.stack(tf.split(pooled, this.viewCount, 0), 1);
      return Float32Array.from(perImage.dataSync());
    });
  }

  /** Side of the locator's square map. */
  private get locatorSide(): number {
    return Math.round(Math.sqrt((this.locator as tf.LayersModel).outputs[0]!.shape[1] as number));
  }

  /** A locator network's maps of a batch: the mean of the image's and the flipped-back mirror's. */
  private locate(x: tf.Tensor4D): { cams: Float32Array; camSide: number } {
    const side = this.locatorSide;
    const maps = (this.locatorPredict as Runner).predict(this.viewsOf(x))[0]!.reshape([-1, side, side]);
    return { cams: this.fromViews(maps).dataSync() as Float32Array, camSide: side };
  }

  /**
   * A locator head's maps from the first classifier's features of the views `view` names (both
   * stacked as {@link mirrorViews} stacks them, by default): a mirror's map is flipped back, and
   * the maps of both views averaged.
   */
  private locateOnFeatures(features: tf.Tensor4D, view?: MirrorView): { cams: Float32Array; camSide: number } {
    const side = this.locatorSide;
    const maps = (this.locatorPredict as Runner).predict(features)[0]!.reshape([-1, side, side]);
    return { cams: this.fromViews(maps, view).dataSync() as Float32Array, camSide: side };
  }

  /**
   * The views a network runs on: the image, its mirror, or (`view` absent) the image and, with
   * test-time flips, its mirror stacked in one batch, which runs faster than two batches. Rotated
   * copies never enter here: their maps would not line up with the image.
   */
  private viewsOf(x: tf.Tensor4D, view?: MirrorView): tf.Tensor4D {
    if (view && !this.views.flip) throw new Error('a model without test-time flips has no mirror view');
    return view === 'image' ? x : view === 'mirror' ? tf.reverse(x, 2) : mirrorViews(x, this.views.flip);
  }

  /** An output of {@link viewsOf}'s input in the image's frame: both views averaged, or the one view (a spatial mirror output flipped back). */
  private fromViews(out: tf.Tensor, view?: MirrorView): tf.Tensor {
    if (!view) return averageMirrorViews(out, this.views.flip);
    return view === 'mirror' && out.rank >= 3 ? tf.reverse(out, 2) : out;
  }

  /**
   * Adds the rotated copies to the probabilities `raw` (count × classes, from the image and its
   * mirror) of the images that need them, all in one batch: each such image's probabilities become
   * the mean over all its views. Returns `raw`, updated in place. Call inside a tidy.
   */
  private withRotations(x: tf.Tensor4D, raw: Float32Array): Float32Array {
    const uncertain = uncertainImages(this.plan, raw);
    if (uncertain.length === 0) return raw;
    const subset = uncertain.length === x.shape[0] ? x : tf.gather(x, uncertain);
    const copies = rotatedViews(subset, this.views.flip, this.views.rotations ?? []);
    const blocks = rotatedCopies(this.plan);
    const perMember = this.members.map((m) => averageBlocks(m.predict(copies).at(-1) as tf.Tensor, blocks));
    const rotated = (perMember.length === 1 ? perMember[0]! : tf.addN(perMember).div(perMember.length)).dataSync();
    return mergeRotated(this.plan, raw, uncertain, rotated);
  }

  /**
   * Runs one piece of a split forward pass (see `forward-pieces.ts`) on `count` images; the pieces
   * of a batch, run on any copies of this model and combined, give what {@link run} gives.
   */
  runPiece(pixels: Uint8Array, count: number, piece: ForwardPiece): PieceResult {
    const size = this.inputSize;
    const out = tf.tidy((): Omit<PieceResult, 'piece'> => {
      const x = tf.tensor4d(toModelInput(pixels), [count, size, size, 1]);
      if (piece.kind === 'locator') {
        if (this.plan.locator !== 'network') throw new Error('this model has no locator network');
        const { cams, camSide } = this.locate(x);
        return { values: new Float32Array(0), maps: cams, camSide };
      }
      const member = this.members[piece.member];
      if (!member) throw new Error(`no classifier ${piece.member} in a forward pass of ${this.members.length}`);
      if (piece.kind === 'member') {
        if (piece.maps && (piece.member !== 0 || this.plan.locator !== 'head')) throw new Error(`classifier ${piece.member} carries no locator head`);
        const outputs = member.predict(this.viewsOf(x, piece.view));
        const probabilities = Float32Array.from(this.fromViews(outputs.at(-1) as tf.Tensor, piece.view).dataSync());
        const atypicality = piece.member === 0 ? this.measure(outputs[0] as tf.Tensor4D, piece.view) : undefined;
        const measured = atypicality ? { atypicality } : {};
        if (!piece.maps) return { values: probabilities, ...measured };
        const { cams, camSide } = this.locateOnFeatures(outputs[0] as tf.Tensor4D, piece.view);
        return { values: probabilities, maps: cams, camSide, ...measured };
      }
      const copies = rotatedViews(tf.gather(x, [...piece.images]), this.views.flip, [piece.angle]);
      const blocks = mirrorCount(this.views.flip);
      const summed = averageBlocks(member.predict(copies).at(-1) as tf.Tensor, blocks).mul(blocks);
      return { values: Float32Array.from(summed.dataSync()) };
    });
    return { piece, ...out };
  }

  dispose(): void {
    this.gauge?.dispose();
    this.locator?.dispose();
    this.locatorPredict?.folded?.dispose();
    for (const member of this.members) {
      member.folded?.dispose();
      member.model.dispose();
      member.classifierKernel.dispose();
    }
  }
}

/** The gauge of `stats`, refused when its size is not the classifier's number of last-block channels. */
function gaugeFor(stats: TypicalityStats, model: tf.LayersModel): TypicalityGauge {
  const channels = model.getLayer(CAM_LAYER).outputShape.at(-1);
  if (stats.mean.length !== channels) throw new Error(`typicality statistics have ${stats.mean.length} channels, the classifier's last block ${String(channels)}`);
  return new TypicalityGauge(stats);
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}
