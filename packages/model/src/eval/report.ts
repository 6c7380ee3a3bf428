import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ModelManifest } from '../model/manifest.js';
import type { EvaluationResult } from './evaluate.js';
import { describePatientVerdicts } from './patient-verdicts.js';
import { confusionSvg, trainingCurvesSvg, type HistoryPoint } from './plots.js';
import { measured, percent as pct, unmeasuredRateNotes } from './unmeasured-rates.js';

const SET_TITLES: Record<string, string> = {
  test: 'Held-out test split (no near-duplicate of it in training)',
  val: 'Validation split (used to choose the epoch and to fit the temperature)',
  externalTest: 'Separate test folder, as published',
  externalTestLeakFree: 'Separate test folder without images that have a near-duplicate in training',
};

function metricsSection(name: string, m: EvaluationResult): string {
  const lines = [
    `### ${SET_TITLES[name] ?? name}`,
    '',
    '| n | accuracy | precision | recall | F1 | specificity | AUC | calibration error |',
    '|---|---|---|---|---|---|---|---|',
    `| ${m.n} | ${pct(m.accuracy)} | ${pct(m.precision)} | ${pct(m.recall)} | ${pct(m.f1)} | ${pct(m.specificity)} | ${measured(m.auc) ? m.auc.toFixed(4) : '–'} | ${m.calibrationError.toFixed(4)} |`,
    '',
    '| class | precision | recall | F1 | support |',
    '|---|---|---|---|---|',
    ...Object.entries(m.perClass).map(([c, v]) => `| ${c} | ${pct(v.precision)} | ${pct(v.recall)} | ${pct(v.f1)} | ${v.support} |`),
    '',
    ...notMeasuredLines(m),
    `Confusion (rows actual, columns predicted; ${m.classes.join(', ')}): \`${JSON.stringify(m.confusion)}\``,
  ];
  if (m.location) {
    lines.push(
      '',
      `Location on ${m.location.n} outlined images: pointing game ${pct(m.location.pointingGame)}, box IoU ≥ 0.5 ${pct(m.location.iou50)}, mean IoU ${m.location.meanIou.toFixed(3)}.`,
    );
  }
  lines.push(...errorLines(m));
  return lines.join('\n');
}

/** Why the rates shown as – were not measured, as a paragraph below the tables. */
function notMeasuredLines(m: EvaluationResult): string[] {
  const notes = unmeasuredRateNotes(m);
  return notes.length === 0 ? [] : [`Not measured (–): ${notes.join(' ')}`, ''];
}

/** Rows of the errors table at most; the manifest and `btd eval --json` list them all. */
const MAX_ERROR_ROWS = 40;

function errorLines(m: EvaluationResult): string[] {
  if (!m.byGroup || !m.misclassified) return [];
  const g = m.byGroup;
  const lines = [
    '',
    `Accuracy's 95% interval from resampling the near-duplicate groups (joined by patient where known): ${pct(g.accuracyInterval[0])}–${pct(g.accuracyInterval[1])}. Each group counted once: ${pct(g.accuracy)} of ${g.groups} groups right (${g.groupsWithErrors} with errors).`,
  ];
  if (m.byPatient) lines.push('', describePatientVerdicts(m.byPatient));
  if (m.misclassified.length === 0) return lines;
  lines.push(
    '',
    `Images predicted wrong (${m.misclassified.length}${m.misclassified.length > MAX_ERROR_ROWS ? `, the first ${MAX_ERROR_ROWS}` : ''}; copies: images of its near-duplicate group among these):`,
    '',
    '| image | actual | predicted | probability | copies |',
    '|---|---|---|---|---|',
    ...m.misclassified.slice(0, MAX_ERROR_ROWS).map((e) => `| \`${e.relPath}\` | ${e.actual} | ${e.predicted} | ${e.probability.toFixed(3)} | ${e.groupSize} |`),
  );
  return lines;
}

/** Writes report.md with curves.svg and one confusion-matrix SVG per evaluated set. */
function ensembleLines(manifest: ModelManifest): string[] {
  const ensemble = manifest.ensemble;
  if (!ensemble) return [];
  return [
    `Ensemble of ${ensemble.members.length} models trained on the same split, probabilities averaged; ${ensemble.durationSeconds} s of training in all${ensemble.command ? `: \`${ensemble.command}\`` : ''}.`,
    '',
    ...ensemble.members.map((m) => {
      const val = (m.metrics?.val as { accuracy?: number } | undefined)?.accuracy;
      const t = m.training;
      const trained = t ? `, ${t.epochsRun} epochs in ${t.durationSeconds} s` : '';
      return `- \`${m.topology}\`: version ${m.version}${trained}${val !== undefined ? `, validation accuracy ${(100 * val).toFixed(1)}%` : ''}${t?.command ? `: \`${t.command}\`` : ''}`;
    }),
    '',
  ];
}

function calibrationLine(manifest: ModelManifest): string {
  const c = manifest.calibration;
  if (!c) return 'Probabilities: as the network gives them (no calibration).';
  return `Probabilities: temperature-scaled, T = ${c.temperature}, fitted on ${c.images} validation images (negative log-likelihood ${c.nllBefore} before, ${c.nllAfter} after).`;
}

function viewsLine(manifest: ModelManifest): string {
  const rotations = manifest.testTimeRotations ?? [];
  const copies = [manifest.testTimeFlip ? 'the image and its mirror' : 'the image alone', ...(rotations.length > 0 ? [`copies of ${manifest.testTimeFlip ? 'both' : 'it'} rotated by ${rotations.join('°, ')}°`] : [])];
  const below = manifest.testTimeRotationsBelow;
  const when = rotations.length > 0 && below !== undefined ? ` (the rotated copies only where the top probability from the first is below ${below})` : '';
  return `Predictions average ${copies.join(', and ')}${when}.`;
}

export async function renderReport(outDir: string, manifest: ModelManifest, history: HistoryPoint[]): Promise<void> {
  if (history.length > 0) await writeFile(path.join(outDir, 'curves.svg'), await trainingCurvesSvg(history));
  const metrics = (manifest.metrics ?? {}) as Record<string, EvaluationResult>;
  const sections: string[] = [];
  for (const [name, m] of Object.entries(metrics)) {
    await writeFile(path.join(outDir, `confusion-${name}.svg`), await confusionSvg(m.confusion, m.classes, SET_TITLES[name] ?? name));
    sections.push(metricsSection(name, m), '', `![confusion ${name}](confusion-${name}.svg)`, '');
  }
  const t = manifest.training;
  const s = manifest.split;
  const body = [
    `# ${manifest.name} ${manifest.version}`,
    '',
    `Task \`${manifest.task}\`, classes ${manifest.classes.join(', ')}; input ${manifest.inputSize}×${manifest.inputSize} grey, preprocessing v${manifest.preprocessing.version}; backend ${manifest.backend}.`,
    t ? `Trained ${t.epochsRun} of ${t.epochs} epochs (best ${t.bestEpoch}) in ${t.durationSeconds} s on ${t.workers} worker(s), ${t.imagesPerSecond} images/s.` : '',
    t?.command ? `Command: \`${t.command}\`` : '',
    ...ensembleLines(manifest),
    manifest.locator
      ? `Heatmap: a locator trained on ${manifest.locator.trainedOn} outlined training images (${manifest.locator.epochs} epochs, ${manifest.locator.durationSeconds} s)${manifest.locator.command ? `: \`${manifest.locator.command}\`` : ''}.`
      : 'Heatmap: the class activation map of the last convolutional block.',
    viewsLine(manifest),
    calibrationLine(manifest),
    s ? `Split: seed ${s.seed}, fingerprint \`${s.fingerprint.slice(0, 16)}\`, ${s.duplicateGroups} near-duplicate groups (correlation ≥ ${s.duplicateThreshold}), ${s.straddlingGroups} straddling splits; counts ${JSON.stringify(s.counts)}.` : '',
    '',
    history.length > 0 ? '![training curves](curves.svg)' : '',
    '',
    '## Evaluation',
    '',
    ...sections,
  ];
  await writeFile(path.join(outDir, 'report.md'), `${body.join('\n')}\n`);
}
