import { createRandom } from '../util/random.js';

/** A group of near-duplicate images: how many were evaluated and how many were predicted right. */
export interface GroupTally {
  size: number;
  right: number;
}

export interface BootstrapOptions {
  /** Resamples drawn (default 2,000). */
  draws?: number;
  /** Coverage of the interval (default 0.95). */
  level?: number;
  seed?: number;
}

/**
 * Percentile interval of accuracy by the cluster bootstrap: each resample draws as many groups as
 * there are, with replacement, and keeps all images of each. Copies of one scan are right or wrong
 * together, so resampling images one by one would give an interval that is too narrow.
 */
export function groupBootstrapInterval(groups: readonly GroupTally[], options: BootstrapOptions = {}): [number, number] {
  const { draws = 2000, level = 0.95, seed = 1 } = options;
  if (groups.length === 0) return [0, 0];
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap level must be in (0, 1), got ${level}`);
  const random = createRandom(seed);
  const accuracies = new Float64Array(draws);
  for (let d = 0; d < draws; d++) {
    let size = 0;
    let right = 0;
    for (let k = 0; k < groups.length; k++) {
      const g = groups[Math.floor(random() * groups.length)] as GroupTally;
      size += g.size;
      right += g.right;
    }
    accuracies[d] = right / size;
  }
  accuracies.sort();
  const at = (q: number) => accuracies[Math.min(draws - 1, Math.max(0, Math.round(q * (draws - 1))))] as number;
  return [at((1 - level) / 2), at((1 + level) / 2)];
}
