import { temperProbabilities } from '../eval/temperature.js';
import { mirrorCount, type TestTimeViews } from './test-time-views.js';

/** One of the two unrotated views of an image, when a classifier's piece takes only one. */
export type MirrorView = 'image' | 'mirror';

/**
 * A share of one batch's forward pass that can run on its own, on another copy of the model (on
 * another thread): the image and its mirror (or only one of them, `view`) through one classifier
 * (the first one with the locator head on its features when `maps` is set) or through a locator
 * network, or some images' rotated copies (and their mirrors) through one classifier at one angle.
 * A run is the sum of its pieces: {@link basePieces} first, then {@link rotationPieces} for the
 * images the first stage left uncertain, then {@link combinePieces}.
 */
export type ForwardPiece =
  | { kind: 'member'; member: number; maps?: boolean; view?: MirrorView }
  | { kind: 'locator' }
  | { kind: 'rotated'; member: number; angle: number; images: readonly number[] };

/**
 * What a piece gives, for `count` images: `member`, probabilities (count × classes, image and mirror
 * averaged, or its one view's) and, when asked, the locator head's maps (a mirror's flipped back);
 * `locator`, maps only; `rotated`, probabilities summed over the piece's copies (images.length ×
 * classes). Maps are count × camSide × camSide.
 */
export interface PieceResult {
  piece: ForwardPiece;
  values: Float32Array;
  maps?: Float32Array;
  camSide?: number;
  /** count: the first classifier's pieces, each image's distance to the training scans, for the piece's views. */
  atypicality?: Float32Array;
}

/**
 * Where a model's map of the tumour comes from: the class activation map (`none`), a locator head
 * on the first classifier's features (`head`), or a locator network of its own (`network`).
 */
export type LocatorKind = 'none' | 'head' | 'network';

/** What splitting a forward pass needs to know about the network; the same on every copy. */
export interface ForwardPlan {
  members: number;
  classes: number;
  locator: LocatorKind;
  views: TestTimeViews;
  /** Applied to the averaged probabilities; 1 leaves them as they are. */
  temperature: number;
}

/**
 * The first stage: each classifier on the image and its mirror (with `splitViews`, as one piece per
 * view) and, when maps are wanted, the locator: within the first classifier's pieces for a head,
 * as a piece of its own for a network.
 */
export function basePieces(plan: ForwardPlan, withMaps: boolean, splitViews = false): ForwardPiece[] {
  const maps = withMaps && plan.locator === 'head';
  const views: (MirrorView | undefined)[] = splitViews && plan.views.flip ? ['image', 'mirror'] : [undefined];
  const members = Array.from({ length: plan.members }, (_, member) =>
    views.map((view): ForwardPiece => ({ kind: 'member', member, ...(maps && member === 0 ? { maps } : {}), ...(view ? { view } : {}) })),
  ).flat();
  return withMaps && plan.locator === 'network' ? [...members, { kind: 'locator' }] : members;
}

/** Whether a classifier's pieces cover its views exactly once: one piece of both, or one per view. */
function coversViews(pieces: readonly PieceResult[]): boolean {
  const views = pieces.map(({ piece }) => (piece.kind === 'member' ? (piece.view ?? 'both') : 'none')).sort();
  return views.join() === 'both' || views.join() === 'image,mirror';
}

/** Mean over the classifiers, and over the views each piece of a classifier took, of their probabilities (count × classes). */
export function meanOfMembers(plan: ForwardPlan, results: readonly PieceResult[]): Float32Array {
  const perMember = Array.from({ length: plan.members }, (_, member) => results.filter(({ piece }) => piece.kind === 'member' && piece.member === member));
  const covered = perMember.filter(coversViews).length;
  if (covered !== plan.members) throw new Error(`expected ${plan.members} classifier pieces, got ${covered}`);
  const mean = new Float32Array(perMember[0]![0]!.values.length);
  for (const pieces of perMember) {
    for (const { values } of pieces) for (let i = 0; i < mean.length; i++) mean[i] = (mean[i] as number) + (values[i] as number) / (plan.members * pieces.length);
  }
  return mean;
}

/** The images whose top probability in `raw` (count × classes, before temperature) is below the rotation bound. */
export function uncertainImages(plan: ForwardPlan, raw: Float32Array): number[] {
  if ((plan.views.rotations ?? []).length === 0) return [];
  const below = plan.views.rotateBelow ?? Infinity;
  const { classes } = plan;
  return Array.from({ length: raw.length / classes }, (_, i) => i).filter((i) => Math.max(...raw.subarray(i * classes, (i + 1) * classes)) < below);
}

/** The second stage for the images `raw` leaves uncertain: one piece per classifier and angle. */
export function rotationPieces(plan: ForwardPlan, raw: Float32Array): ForwardPiece[] {
  const images = uncertainImages(plan, raw);
  if (images.length === 0) return [];
  const angles = plan.views.rotations ?? [];
  return Array.from({ length: plan.members }, (_, member) => angles.map((angle): ForwardPiece => ({ kind: 'rotated', member, angle, images }))).flat();
}

/** How many rotated copies each uncertain image gets per classifier. */
export function rotatedCopies(plan: ForwardPlan): number {
  return (plan.views.rotations ?? []).length * mirrorCount(plan.views.flip);
}

/**
 * Folds the rotated copies into `raw` (count × classes, updated in place): each uncertain image's
 * probabilities become the mean over its image, mirror and rotated copies. `rotatedMean` holds, per
 * uncertain image in order, the mean over the classifiers and rotated copies.
 */
export function mergeRotated(plan: ForwardPlan, raw: Float32Array, uncertain: readonly number[], rotatedMean: ArrayLike<number>): Float32Array {
  const { classes } = plan;
  const mirrors = mirrorCount(plan.views.flip);
  const blocks = rotatedCopies(plan);
  uncertain.forEach((image, k) => {
    for (let c = 0; c < classes; c++) {
      const at = image * classes + c;
      raw[at] = (mirrors * (raw[at] as number) + blocks * (rotatedMean[k * classes + c] as number)) / (mirrors + blocks);
    }
  });
  return raw;
}

/** The served probabilities: `raw` scaled by the plan's temperature. */
export function temperedProbabilities(plan: ForwardPlan, raw: Float32Array): Float32Array {
  return plan.temperature === 1 ? raw : temperProbabilities(raw, plan.classes, plan.temperature);
}

/**
 * Puts a split run back together: the probabilities a single `ForwardPass.run` gives, and the
 * locator's maps when a piece gave them. Every rotation piece that {@link rotationPieces} asked for
 * must be among `rotated`.
 */
export function combinePieces(
  plan: ForwardPlan,
  base: readonly PieceResult[],
  rotated: readonly PieceResult[],
): { probabilities: Float32Array; maps?: { values: Float32Array; side: number }; atypicality?: Float32Array } {
  const raw = meanOfMembers(plan, base);
  const expected = rotationPieces(plan, raw);
  if (expected.length > 0) {
    const images = (expected[0] as Extract<ForwardPiece, { kind: 'rotated' }>).images;
    const { classes } = plan;
    const sums = new Float32Array(images.length * classes);
    for (const want of expected) {
      if (want.kind !== 'rotated') continue;
      const got = rotated.find(({ piece }) => piece.kind === 'rotated' && piece.member === want.member && piece.angle === want.angle);
      if (!got || (got.piece as typeof want).images.join() !== images.join()) throw new Error(`missing the rotated piece of classifier ${want.member} at ${want.angle}°`);
      for (let i = 0; i < sums.length; i++) sums[i] = (sums[i] as number) + (got.values[i] as number);
    }
    const perCopy = plan.members * rotatedCopies(plan);
    mergeRotated(plan, raw, images, sums.map((s) => s / perCopy));
  }
  const probabilities = temperedProbabilities(plan, raw);
  const atypicality = meanOfViews(base.map((piece) => piece.atypicality));
  const measured = atypicality ? { atypicality } : {};
  // The locator's maps: from its own piece, or from the first classifier's pieces (one per view, averaged).
  const maps = meanOfViews(base.map((piece) => piece.maps));
  if (!maps) return { probabilities, ...measured };
  return { probabilities, maps: { values: maps, side: base.find((piece) => piece.maps)!.camSide as number }, ...measured };
}

/** The element-wise mean of the arrays pieces gave (one per view of a classifier), or undefined when none gave one. */
function meanOfViews(arrays: readonly (Float32Array | undefined)[]): Float32Array | undefined {
  const given = arrays.filter((array): array is Float32Array => array !== undefined);
  if (given.length === 0) return undefined;
  const mean = new Float32Array(given[0]!.length);
  for (const array of given) array.forEach((v, i) => (mean[i] = (mean[i] as number) + v / given.length));
  return mean;
}
