import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultPreprocessParams } from '../data/preprocess.js';
import { DEFAULT_ARCHITECTURE } from '../model/architecture.js';
import type { ModelManifest } from '../model/manifest.js';
import { classificationMetrics } from './metrics.js';
import { renderReport } from './report.js';

const dir = await mkdtemp(path.join(tmpdir(), 'btd-report-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('renderReport', () => {
  it('shows a rate nothing measured as a dash, with the reason, as evaluated and as read back from a manifest', async () => {
    // Tumour scans only: no negatives, so neither specificity nor AUC is measured.
    const evaluated = classificationMetrics([0, 0], [0.9, 0.1, 0.8, 0.2], ['tumor', 'no_tumor'], 'tumor');
    const manifest: ModelManifest = {
      name: 'tumor-binary',
      task: 'tumor-binary',
      version: 'test',
      createdAt: '',
      classes: ['tumor', 'no_tumor'],
      inputSize: 96,
      preprocessing: defaultPreprocessParams(96),
      architecture: { ...DEFAULT_ARCHITECTURE, inputSize: 96, numClasses: 2 },
      backend: 'wasm',
      testTimeFlip: true,
      metrics: { inMemory: evaluated, readBack: JSON.parse(JSON.stringify(evaluated)) as unknown },
    };
    await renderReport(dir, manifest, []);
    const lines = (await readFile(path.join(dir, 'report.md'), 'utf8')).split('\n');
    const rows = lines.filter((line) => line.startsWith('| 2 |') || line.startsWith('| no_tumor |'));
    const row = ['| 2 | 100.0% | 100.0% | 100.0% | 100.0% | – | – | 0.1500 |', '| no_tumor | – | – | – | 0 |'];
    expect(rows).toEqual([...row, ...row]);
    // With the reason, below each set's tables.
    const why = 'Not measured (–): specificity and AUC: every image is `tumor`, so none is a negative to measure them on. `no_tumor`: no image is of that class or was called so.';
    expect(lines.filter((line) => line.startsWith('Not measured'))).toEqual([why, why]);
  });
});
