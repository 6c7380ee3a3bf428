import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { GateEvidence } from './candidate-evaluation.js';

/**
 * Records the gate's evidence in the candidate's manifest before it is published, so the version
 * itself says which evaluation set it was judged on and how it compared.
 */
export async function annotateManifest(outDir: string, evidence: GateEvidence): Promise<void> {
  const file = path.join(outDir, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  manifest.evaluation = {
    set: evidence.evaluationSet,
    maxImages: evidence.maxImages,
    metrics: evidence.candidate,
    baseline: evidence.baseline,
    decision: evidence.decision,
  };
  await writeFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
}
