/**
 * Classification metrics from labels and probabilities. Every rate is a fraction in [0, 1], or null
 * where its denominator is empty: nothing measured it, and 0 would say the model got every such case wrong.
 */

/** A fraction in [0, 1], or null where no image measures it. */
export type Rate = number | null;

export interface ClassMetrics {
  /** Share of the images called this class that are of it; null when none was called so. */
  precision: Rate;
  /** Share of the images of this class called so; null when there are none. */
  recall: Rate;
  /**
   * 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall (0 when either is 0, the other
   * then being 0 or unmeasured); null only when no image is of this class or was called so.
   */
  f1: Rate;
  /** Share of the images of other classes not called this one; null when there are none. */
  specificity: Rate;
  support: number;
}

export interface ClassificationMetrics {
  n: number;
  accuracy: number;
  /**
   * For binary tasks: of the positive class; otherwise macro averages over the classes present in the
   * truth or the predictions (a class neither present nor predicted says nothing of the model), each
   * leaving out the classes the rate is null for, and null when it is null for all of them.
   */
  precision: Rate;
  recall: Rate;
  f1: Rate;
  /** As precision: null for a binary set without negatives or, averaged, a set of one class called that class only. */
  specificity: Rate;
  /** ROC AUC of the positive class (binary tasks only); null unless both classes have images. */
  auc?: Rate;
  /** Expected calibration error over 10 equal-width confidence bins. */
  calibrationError: number;
  perClass: Record<string, ClassMetrics>;
  /** confusion[actual][predicted], in `classes` order. */
  confusion: number[][];
  classes: string[];
}

/** a / b, or null when b is 0: a rate nothing measured. */
const rate = (a: number, b: number): Rate => (b === 0 ? null : a / b);

export function confusionMatrix(actual: readonly number[], predicted: readonly number[], classes: number): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  actual.forEach((a, i) => {
    m[a]![predicted[i] as number]! += 1;
  });
  return m;
}

export function perClassMetrics(confusion: number[][], classes: readonly string[]): Record<string, ClassMetrics> {
  const total = confusion.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  return Object.fromEntries(
    classes.map((name, c) => {
      const tp = confusion[c]![c]!;
      const support = confusion[c]!.reduce((a, b) => a + b, 0);
      const predicted = confusion.reduce((s, row) => s + row[c]!, 0);
      const fp = predicted - tp;
      const fn = support - tp;
      const tn = total - tp - fp - fn;
      const metrics: ClassMetrics = {
        precision: rate(tp, predicted),
        recall: rate(tp, support),
        f1: rate(2 * tp, 2 * tp + fp + fn),
        specificity: rate(tn, tn + fp),
        support,
      };
      return [name, metrics];
    }),
  );
}

/** Area under the ROC curve by the rank statistic (ties count one half). */
export function rocAuc(scores: readonly number[], positive: readonly boolean[]): number {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(scores.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = rank;
    i = j + 1;
  }
  const nPos = positive.filter(Boolean).length;
  const nNeg = positive.length - nPos;
  if (nPos === 0 || nNeg === 0) return Number.NaN;
  const rankSum = positive.reduce((s, p, i) => (p ? s + (ranks[i] as number) : s), 0);
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Expected calibration error of the top-class confidence. */
export function expectedCalibrationError(confidences: readonly number[], correct: readonly boolean[], bins = 10): number {
  const count = new Array<number>(bins).fill(0);
  const conf = new Array<number>(bins).fill(0);
  const acc = new Array<number>(bins).fill(0);
  confidences.forEach((c, i) => {
    const b = Math.min(bins - 1, Math.floor(c * bins));
    count[b]! += 1;
    conf[b]! += c;
    acc[b]! += correct[i] ? 1 : 0;
  });
  const n = confidences.length;
  return count.reduce((s, k, b) => (k === 0 ? s : s + (k / n) * Math.abs(acc[b]! / k - conf[b]! / k)), 0);
}

/** The class with the highest probability in row `row` of an n × k matrix (the first on ties). */
export function topClass(probabilities: Float32Array | readonly number[], row: number, k: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if ((probabilities[row * k + c] as number) > (probabilities[row * k + best] as number)) best = c;
  return best;
}

/**
 * @param probabilities n × classes, row-major
 * @param positiveClass for binary tasks, the class whose precision/recall/specificity/AUC are reported
 */
export function classificationMetrics(
  actual: readonly number[],
  probabilities: Float32Array | readonly number[],
  classes: readonly string[],
  positiveClass?: string,
): ClassificationMetrics {
  const k = classes.length;
  const predicted = actual.map((_, i) => topClass(probabilities, i, k));
  const confusion = confusionMatrix(actual, predicted, k);
  const perClass = perClassMetrics(confusion, classes);
  const correct = predicted.map((p, i) => p === actual[i]);
  const confidences = predicted.map((p, i) => probabilities[i * k + p] as number);
  const n = actual.length;
  const base = {
    n,
    accuracy: n === 0 ? 0 : correct.filter(Boolean).length / n,
    calibrationError: expectedCalibrationError(confidences, correct),
    perClass,
    confusion,
    classes: [...classes],
  };
  const pos = positiveClass ? classes.indexOf(positiveClass) : -1;
  if (pos >= 0) {
    const m = perClass[positiveClass as string] as ClassMetrics;
    const auc = rocAuc(actual.map((_, i) => probabilities[i * k + pos] as number), actual.map((a) => a === pos));
    return { ...base, precision: m.precision, recall: m.recall, f1: m.f1, specificity: m.specificity, auc: Number.isNaN(auc) ? null : auc };
  }
  const seen = classesSeen(confusion).map((c) => perClass[classes[c] as string] as ClassMetrics);
  return {
    ...base,
    precision: meanOfMeasured(seen.map((m) => m.precision)),
    recall: meanOfMeasured(seen.map((m) => m.recall)),
    f1: meanOfMeasured(seen.map((m) => m.f1)),
    specificity: meanOfMeasured(seen.map((m) => m.specificity)),
  };
}

/** Indices of the classes that some image has, or that some image was called: those a macro average counts. */
function classesSeen(confusion: readonly (readonly number[])[]): number[] {
  return confusion.flatMap((row, c) => (row.some((count) => count > 0) || confusion.some((other) => (other[c] as number) > 0) ? [c] : []));
}

/** Mean of the rates that were measured, leaving out the nulls; null when none was. */
function meanOfMeasured(rates: readonly Rate[]): Rate {
  const measured = rates.filter((v): v is number => v !== null);
  return measured.length === 0 ? null : measured.reduce((sum, v) => sum + v, 0) / measured.length;
}
