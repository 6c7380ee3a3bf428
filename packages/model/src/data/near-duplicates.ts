/**
 * Near-duplicate detection by thumbnail correlation. The datasets hold the same slice re-cropped,
 * re-scaled and re-contrasted under other names; preprocessing already removes the border and the
 * scale, and a zero-mean, unit-norm thumbnail removes brightness and contrast, so copies correlate
 * close to 1 while distinct slices do not. They also hold left-right mirrored copies (burnt-in text
 * reads backwards), which training sees anyway through its flips and serving through its mirrored
 * view: an image counts as a copy of another when either it or its mirror image correlates.
 */

/** Side of the thumbnail compared for near-duplicates; 16 is too coarse (distinct slices correlate). */
export const THUMB_SIDE = 32;
/** A cheaper thumbnail that pre-filters candidate pairs. */
const COARSE_SIDE = 16;
const COARSE_THRESHOLD = 0.9;

/**
 * Default correlation above which two images are the same slice. On the 4-class set, the share of
 * test images with a training image at or above it drops sharply between 0.97 and 0.99 (38, 18 and
 * 438 images in the bins 0.97, 0.98, ≥ 0.99), so 0.97 sits at the edge of the copies' mode.
 */
export const DEFAULT_DUPLICATE_THRESHOLD = 0.97;

/** Thumbnails of a set of images, for near-duplicate search. */
export interface Signatures {
  count: number;
  coarse: Float32Array;
  fine: Float32Array;
  /** The thumbnails of the mirror images. */
  mirroredCoarse: Float32Array;
  mirroredFine: Float32Array;
}

/** Signatures of square grey images (count × size × size). */
export function signatures(pixels: Uint8Array, count: number, size: number): Signatures {
  // Thumbnails of the mirror images, not mirrored thumbnails: where size is not a multiple of the
  // side, the box cells are not symmetric and a mirrored thumbnail is not the mirror's thumbnail.
  const mirrored = mirrorImages(pixels, count, size);
  return {
    count,
    coarse: thumbnails(pixels, count, size, COARSE_SIDE),
    fine: thumbnails(pixels, count, size, THUMB_SIDE),
    mirroredCoarse: thumbnails(mirrored, count, size, COARSE_SIDE),
    mirroredFine: thumbnails(mirrored, count, size, THUMB_SIDE),
  };
}

/** Square images (count × size × size) with every row reversed. */
function mirrorImages(pixels: Uint8Array, count: number, size: number): Uint8Array {
  const out = new Uint8Array(count * size * size);
  for (let row = 0; row < count * size * size; row += size) {
    for (let x = 0; x < size; x++) out[row + x] = pixels[row + size - 1 - x] as number;
  }
  return out;
}

/** Zero-mean, unit-norm side² thumbnails (box average) of square grey images of side `size`. */
export function thumbnails(pixels: Uint8Array, count: number, size: number, side = THUMB_SIDE): Float32Array {
  const out = new Float32Array(count * side * side);
  const cell = size / side;
  const area = size * size;
  for (let n = 0; n < count; n++) {
    const base = n * area;
    const thumb = out.subarray(n * side * side, (n + 1) * side * side);
    for (let ty = 0; ty < side; ty++) {
      const y0 = Math.floor(ty * cell);
      const y1 = Math.max(y0 + 1, Math.floor((ty + 1) * cell));
      for (let tx = 0; tx < side; tx++) {
        const x0 = Math.floor(tx * cell);
        const x1 = Math.max(x0 + 1, Math.floor((tx + 1) * cell));
        let sum = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += pixels[base + y * size + x] as number;
        thumb[ty * side + tx] = sum / ((y1 - y0) * (x1 - x0));
      }
    }
    normalise(thumb);
  }
  return out;
}

function dot(a: Float32Array, i: number, b: Float32Array, j: number, d: number): number {
  let sum = 0;
  const oa = i * d;
  const ob = j * d;
  for (let k = 0; k < d; k++) sum += (a[oa + k] as number) * (b[ob + k] as number);
  return sum;
}

/**
 * Correlation of image i of `a` with image j of `b` or with its mirror image, whichever is higher,
 * or -1 when the coarse filter already rules out both.
 */
export function similarity(a: Signatures, i: number, b: Signatures, j: number): number {
  const coarse = COARSE_SIDE * COARSE_SIDE;
  const fine = THUMB_SIDE * THUMB_SIDE;
  const direct = dot(a.coarse, i, b.coarse, j, coarse) < COARSE_THRESHOLD ? -1 : dot(a.fine, i, b.fine, j, fine);
  const mirrored = dot(a.mirroredCoarse, i, b.coarse, j, coarse) < COARSE_THRESHOLD ? -1 : dot(a.mirroredFine, i, b.fine, j, fine);
  return Math.max(direct, mirrored);
}

function normalise(v: Float32Array): void {
  let mean = 0;
  for (const x of v) mean += x;
  mean /= v.length;
  let norm = 0;
  for (let i = 0; i < v.length; i++) {
    const d = (v[i] as number) - mean;
    v[i] = d;
    norm += d * d;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) * scale;
}

/** Union-find over item indices. */
export class DisjointSets {
  private readonly parent: Int32Array;
  constructor(n: number) {
    this.parent = Int32Array.from({ length: n }, (_, i) => i);
  }
  find(i: number): number {
    let root = i;
    while (this.parent[root] !== root) root = this.parent[root] as number;
    while (this.parent[i] !== root) {
      const next = this.parent[i] as number;
      this.parent[i] = root;
      i = next;
    }
    return root;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
}

export interface DuplicateGroups {
  /** Group id per item: the smallest index in its group. */
  groupOf: Int32Array;
  /** Number of groups with two or more items. */
  duplicateGroups: number;
  /** Number of pairs above the threshold. */
  pairs: number;
}

/** Groups items whose thumbnails correlate at or above the threshold (transitively). */
export function groupNearDuplicates(sigs: Signatures, threshold = DEFAULT_DUPLICATE_THRESHOLD): DuplicateGroups {
  const count = sigs.count;
  const sets = new DisjointSets(count);
  let pairs = 0;
  for (let a = 0; a < count; a++) {
    for (let b = a + 1; b < count; b++) {
      if (similarity(sigs, a, sigs, b) >= threshold) {
        sets.union(a, b);
        pairs++;
      }
    }
  }
  const groupOf = new Int32Array(count);
  const sizes = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const g = sets.find(i);
    groupOf[i] = g;
    sizes.set(g, (sizes.get(g) ?? 0) + 1);
  }
  let duplicateGroups = 0;
  for (const size of sizes.values()) if (size > 1) duplicateGroups++;
  return { groupOf, duplicateGroups, pairs };
}

/** For each query image, whether any reference image is a near-duplicate of it. */
export function hasNearDuplicateIn(query: Signatures, reference: Signatures, threshold = DEFAULT_DUPLICATE_THRESHOLD): boolean[] {
  const out: boolean[] = [];
  for (let q = 0; q < query.count; q++) {
    let found = false;
    for (let r = 0; r < reference.count && !found; r++) found = similarity(query, q, reference, r) >= threshold;
    out.push(found);
  }
  return out;
}
