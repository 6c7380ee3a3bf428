import type { RegistryManifest } from '@btd/shared';
import { gateMetrics, type Evaluation, type GateMetrics } from './promotion-gate.js';

const isEvaluation = (value: unknown): value is Evaluation => {
  const evaluation = value as Partial<Evaluation> | undefined;
  return typeof evaluation?.n === 'number' && typeof evaluation.accuracy === 'number' && Array.isArray(evaluation.confusion) && typeof evaluation.perClass === 'object';
};

/**
 * A version's own figures on the test split its training held out (its manifest's `metrics.test`),
 * reduced to the measures the gate compares on its evaluation set, so that an outcome can show both
 * side by side. Null when the training held out no test image (a small dataset), and so measured none.
 */
export function testSplitMetrics(manifest: RegistryManifest): GateMetrics | null {
  const test = manifest.metrics?.test;
  return isEvaluation(test) ? gateMetrics(manifest.classes, test) : null;
}
