import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseItemPath } from '../data/dataset-folder.js';
import type { LoadedModel } from '../model/loaded-model.js';
import { renderOverlay } from '../model/overlay.js';
import type { Misclassified } from './errors-by-group.js';

/** Overlay file name of an image: its path relative to the dataset with folders joined by `__` (and `-frame<n>` for a frame). */
export function reviewImageName(relPath: string): string {
  const { file, frame } = parseItemPath(relPath);
  const base = file.split(/[\\/]/).join('__').replace(/\.[^.]+$/, '');
  return `${base}${frame === undefined ? '' : `-frame${frame + 1}`}.png`;
}

/**
 * Writes, for a reader who checks the labels and the model, each wrongly predicted image with the
 * heatmap and box of the served model over it, and `index.md` listing them with their near-duplicate
 * groups. Returns the path of the index.
 */
export async function writeReviewPack(model: LoadedModel, dataDir: string, misclassified: readonly Misclassified[], outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const rows: string[] = [];
  for (const e of misclassified) {
    const { file, frame } = parseItemPath(e.relPath);
    const bytes = await readFile(path.join(dataDir, file));
    const prediction = await model.predict(bytes, { heatmap: true, frame, refuseAtypical: false });
    const name = reviewImageName(e.relPath);
    await writeFile(path.join(outDir, name), await renderOverlay(bytes, prediction, frame));
    rows.push(`| \`${e.relPath}\` | ${e.actual} | ${e.predicted} | ${e.probability.toFixed(3)} | ${e.groupSize} (\`${e.group}\`) | ![${e.relPath}](${name}) |`);
  }
  const m = model.manifest;
  const index = [
    `# Images ${m.name} ${m.version} predicted wrong`,
    '',
    `${misclassified.length} images of \`${dataDir}\`. Each shows the heatmap and box of the served model; copies counts the`,
    'images of its near-duplicate group among those evaluated (named by its first image), which the model gets right or wrong alike.',
    '',
    '| image | actual | predicted | probability | copies | heatmap |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  const file = path.join(outDir, 'index.md');
  await writeFile(file, index);
  return file;
}
