/**
 * Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", 2017): every
 * probability vector becomes softmax(log p / T). One scalar, fitted on the validation images by
 * minimising their negative log-likelihood, brings the predicted probabilities in line with how
 * often the model is right. It never changes which class is the most probable, so accuracy, the
 * ranking behind the ROC curve and the heatmaps stay as they were.
 */

/** Probabilities below this count as this much, so that the logarithm stays finite. */
const FLOOR = 1e-12;
/** The range searched, as the inverse temperature 1/T. */
const MIN_INVERSE = 0.2;
const MAX_INVERSE = 5;

export interface TemperatureFit {
  temperature: number;
  /** Mean negative log-likelihood of the true classes at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
}

/** softmax(log p / T) of each row of `probabilities` (count × classes); a new array. */
export function temperProbabilities(probabilities: Float32Array, classes: number, temperature: number): Float32Array {
  if (!(temperature > 0)) throw new Error(`temperature must be positive, got ${temperature}`);
  const out = new Float32Array(probabilities.length);
  const inverse = 1 / temperature;
  for (let row = 0; row < probabilities.length; row += classes) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) {
      const scaled = Math.log(Math.max(probabilities[row + c]!, FLOOR)) * inverse;
      out[row + c] = scaled;
      if (scaled > max) max = scaled;
    }
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const e = Math.exp(out[row + c]! - max);
      out[row + c] = e;
      sum += e;
    }
    for (let c = 0; c < classes; c++) out[row + c] = out[row + c]! / sum;
  }
  return out;
}

/** Mean negative log-likelihood of the true classes under softmax(log p · inverse). */
function meanNll(logs: Float64Array, actual: readonly number[], classes: number, inverse: number): number {
  let total = 0;
  for (let i = 0; i < actual.length; i++) {
    const row = i * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logs[row + c]! * inverse);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logs[row + c]! * inverse - max);
    total += max + Math.log(sum) - logs[row + actual[i]!]! * inverse;
  }
  return total / actual.length;
}

/**
 * The temperature that minimises the negative log-likelihood of `actual` (class indices) under
 * the tempered `probabilities` (count × classes). The likelihood is convex in 1/T, so a
 * golden-section search over 1/T in [0.2, 5] finds its minimum.
 */
export function fitTemperature(probabilities: Float32Array, actual: readonly number[], classes: number): TemperatureFit {
  if (actual.length === 0 || probabilities.length !== actual.length * classes) {
    throw new Error(`need count × classes probabilities for a non-empty set, got ${probabilities.length} for ${actual.length} × ${classes}`);
  }
  const logs = Float64Array.from(probabilities, (p) => Math.log(Math.max(p, FLOOR)));
  const nll = (inverse: number) => meanNll(logs, actual, classes, inverse);
  const ratio = (Math.sqrt(5) - 1) / 2;
  let [lo, hi] = [MIN_INVERSE, MAX_INVERSE];
  let a = hi - ratio * (hi - lo);
  let b = lo + ratio * (hi - lo);
  let [fa, fb] = [nll(a), nll(b)];
  while (hi - lo > 1e-4) {
    if (fa <= fb) {
      [hi, b, fb] = [b, a, fa];
      a = hi - ratio * (hi - lo);
      fa = nll(a);
    } else {
      [lo, a, fa] = [a, b, fb];
      b = lo + ratio * (hi - lo);
      fb = nll(b);
    }
  }
  const inverse = (lo + hi) / 2;
  return { temperature: 1 / inverse, nllBefore: nll(1), nllAfter: nll(inverse) };
}
