/**
 * Rates as a reader sees them: a percentage, or a dash where nothing measured the rate, with the reason.
 * Evaluations read back from a manifest hold null there (JSON has no NaN); records stored before rates
 * could be unmeasured keep the 0 they were stored with.
 */
import type { Rate } from './metrics.js';

/** Whether a rate was measured (a number; not null, undefined or NaN). */
export const measured = (v: Rate | undefined): v is number => typeof v === 'number' && !Number.isNaN(v);

/** A rate as a percentage with `digits` decimals, or `–` where nothing measured it. */
export const percent = (v: Rate | undefined, digits = 1): string => (measured(v) ? `${(100 * v).toFixed(digits)}%` : '–');

/** What the notes read of an evaluation: its counts, and the rates that may be unmeasured. */
export interface CountedEvaluation {
  classes: readonly string[];
  /** confusion[actual][predicted], in `classes` order. */
  confusion: readonly (readonly number[])[];
  specificity: Rate;
  /** Present for a binary task, whose overall rates are its positive class's; absent, they are averages over the classes. */
  auc?: Rate;
}

const quoted = (names: readonly string[]) => names.map((name) => `\`${name}\``).join(', ');

/**
 * One sentence for each rate of an evaluation that nothing measured, saying why, from its confusion
 * matrix: a class without images has no recall, a class no image was called has no precision, and a
 * set of one class has no negatives for specificity (nor a second class for AUC).
 */
export function unmeasuredRateNotes(m: CountedEvaluation): string[] {
  const support = m.confusion.map((row) => row.reduce((sum, count) => sum + count, 0));
  const called = m.classes.map((_, c) => m.confusion.reduce((sum, row) => sum + (row[c] ?? 0), 0));
  const absent = m.classes.filter((_, c) => support[c] === 0 && (called[c] ?? 0) > 0);
  const neverCalled = m.classes.filter((_, c) => (support[c] ?? 0) > 0 && called[c] === 0);
  const unseen = m.classes.filter((_, c) => support[c] === 0 && called[c] === 0);
  const present = m.classes.filter((_, c) => (support[c] ?? 0) > 0);
  const notes: string[] = [];
  const unmeasuredTotals = [...(measured(m.specificity) ? [] : ['specificity']), ...(m.auc !== undefined && !measured(m.auc) ? ['AUC'] : [])];
  if (unmeasuredTotals.length > 0 && present.length === 1) {
    notes.push(`${unmeasuredTotals.join(' and ')}: every image is ${quoted(present)}, so none is a negative to measure ${unmeasuredTotals.length > 1 ? 'them' : 'it'} on.`);
  }
  if (absent.length > 0) notes.push(`recall of ${quoted(absent)}: no image is of that class.`);
  if (neverCalled.length > 0) notes.push(`precision of ${quoted(neverCalled)}: no image was called so.`);
  if (unseen.length > 0) notes.push(`${quoted(unseen)}: no image is of that class or was called so.`);
  // Without an AUC the overall rates are averages over the classes, which leave out the unmeasured.
  if (m.auc === undefined && absent.length + neverCalled.length > 0) notes.push('The averages leave out the classes a rate is not measured for.');
  return notes;
}
