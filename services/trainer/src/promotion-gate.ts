/** Evaluation output the gate reads; `evaluateModel` of `@btd/model` returns a superset. */
export interface Evaluation {
  n: number;
  accuracy: number;
  /** A class's recall is null when it has no images (support 0). */
  perClass: Record<string, { recall: number | null; support: number }>;
  /** Rows are true classes, columns predicted classes, both in the model's class order. */
  confusion: number[][];
}

/** The numbers the gate compares, recorded in the candidate's manifest and status. */
export interface GateMetrics {
  /** Images evaluated. */
  n: number;
  accuracy: number;
  /**
   * Share of tumour images predicted as any tumour class (binary: recall of `tumor`); null when the
   * set holds no tumour image, so that nothing measured it (recorded as null, never as 0).
   */
  sensitivity: number | null;
  /** Mean recall over classes present in the set; null when none is. */
  macroRecall: number | null;
}

/** The gate's verdict. */
export interface GateDecision {
  promote: boolean;
  /** Why not (empty when promoted), or notes about the comparison. */
  reasons: string[];
}

const NO_TUMOUR = 'no_tumor';

/**
 * Tumour-vs-no-tumour sensitivity from a confusion matrix: for the binary task it is the recall
 * of `tumor`; for the type task a glioma called meningioma still counts as found, because the
 * clinical cost is in calling a tumour "no tumour".
 */
export function tumourSensitivity(classes: readonly string[], confusion: readonly (readonly number[])[]): number | null {
  const negative = classes.indexOf(NO_TUMOUR);
  let tumours = 0;
  let found = 0;
  classes.forEach((name, row) => {
    if (name === NO_TUMOUR) return;
    const counts = confusion[row] ?? [];
    const total = counts.reduce((sum, value) => sum + value, 0);
    tumours += total;
    found += total - (negative >= 0 ? (counts[negative] ?? 0) : 0);
  });
  return tumours === 0 ? null : found / tumours;
}

/** Reduces an evaluation to the gate's metrics. */
export function gateMetrics(classes: readonly string[], evaluation: Evaluation): GateMetrics {
  const recalls = Object.values(evaluation.perClass).flatMap((c) => (c.support > 0 && c.recall !== null ? [c.recall] : []));
  const macroRecall = recalls.length === 0 ? null : recalls.reduce((sum, recall) => sum + recall, 0) / recalls.length;
  return {
    n: evaluation.n,
    accuracy: evaluation.accuracy,
    sensitivity: tumourSensitivity(classes, evaluation.confusion),
    macroRecall,
  };
}

const pct = (value: number): string => `${(value * 100).toFixed(1)}%`;

/** The measures the gate compares, with the images each is measured on. */
const COMPARED = [
  { key: 'accuracy', on: 'image' },
  { key: 'sensitivity', on: 'tumour image' },
] as const;

/**
 * Promote only when the candidate is at least as good as the promoted model on the same
 * evaluation set in both accuracy and sensitivity (within `tolerance`). Without a promoted model
 * to compare with, the candidate wins by default. A measure the set cannot give (null: sensitivity
 * on a set without tumour images) shows nothing of either model, so the candidate is refused,
 * saying so, rather than promoted on a comparison that did not take place.
 */
export function decidePromotion(candidate: GateMetrics, baseline: GateMetrics | null, tolerance = 0): GateDecision {
  if (!baseline) return { promote: true, reasons: [] };
  const reasons: string[] = [];
  for (const { key, on } of COMPARED) {
    const mine = candidate[key];
    const theirs = baseline[key];
    if (mine === null || theirs === null) {
      reasons.push(`${key} was not measured: the evaluation set has no ${on} to measure it on, so the candidate cannot be shown as good as the promoted model`);
    } else if (mine < theirs - tolerance) {
      reasons.push(`${key} ${pct(mine)} is below the promoted model's ${pct(theirs)}`);
    }
  }
  return { promote: reasons.length === 0, reasons };
}
