/** Evaluation output the gate reads; `evaluateModel` of `@btd/model` returns a superset. */
export interface Evaluation {
  n: number;
  accuracy: number;
  perClass: Record<string, { recall: number; support: number }>;
  /** Rows are true classes, columns predicted classes, both in the model's class order. */
  confusion: number[][];
}

/** The numbers the gate compares, recorded in the candidate's manifest and status. */
export interface GateMetrics {
  /** Images evaluated. */
  n: number;
  accuracy: number;
  /** Share of tumour images predicted as any tumour class (binary: recall of `tumor`). */
  sensitivity: number;
  /** Mean recall over classes present in the set. */
  macroRecall: number;
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
export function tumourSensitivity(classes: readonly string[], confusion: readonly (readonly number[])[]): number {
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
  return tumours === 0 ? 0 : found / tumours;
}

/** Reduces an evaluation to the gate's metrics. */
export function gateMetrics(classes: readonly string[], evaluation: Evaluation): GateMetrics {
  const present = Object.values(evaluation.perClass).filter((c) => c.support > 0);
  const macroRecall = present.length === 0 ? 0 : present.reduce((sum, c) => sum + c.recall, 0) / present.length;
  return {
    n: evaluation.n,
    accuracy: evaluation.accuracy,
    sensitivity: tumourSensitivity(classes, evaluation.confusion),
    macroRecall,
  };
}

const pct = (value: number): string => `${(value * 100).toFixed(1)}%`;

/**
 * Promote only when the candidate is at least as good as the promoted model on the same
 * evaluation set in both accuracy and sensitivity (within `tolerance`). Without a promoted model
 * to compare with, the candidate wins by default.
 */
export function decidePromotion(candidate: GateMetrics, baseline: GateMetrics | null, tolerance = 0): GateDecision {
  if (!baseline) return { promote: true, reasons: [] };
  const reasons: string[] = [];
  if (candidate.accuracy < baseline.accuracy - tolerance) {
    reasons.push(`accuracy ${pct(candidate.accuracy)} is below the promoted model's ${pct(baseline.accuracy)}`);
  }
  if (candidate.sensitivity < baseline.sensitivity - tolerance) {
    reasons.push(`sensitivity ${pct(candidate.sensitivity)} is below the promoted model's ${pct(baseline.sensitivity)}`);
  }
  return { promote: reasons.length === 0, reasons };
}
