import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { ImageDecodeError } from '../data/image-decode-error.js';
import { loadModel } from '../model/loaded-model.js';
import { renderOverlay } from '../model/overlay.js';

function overlayPath(pattern: string, file: string, many: boolean): string {
  if (!many) return pattern;
  const ext = path.extname(pattern) || '.png';
  return `${pattern.slice(0, pattern.length - path.extname(pattern).length)}-${path.basename(file, path.extname(file))}${ext}`;
}

export function registerPredictCommand(program: Command): void {
  program
    .command('predict')
    .description('predict label, probabilities and tumour box for image files (one JSON line each)')
    .requiredOption('--model <dir>', 'model artifact folder')
    .option('--heatmap <out.png>', 'write the heatmap overlay (with several files: out-<name>.png)')
    .argument('<files...>', 'image files (JPEG, PNG, ...)')
    .action(async (files: string[], opts: { model: string; heatmap?: string }) => {
      await initBackend();
      const model = await loadModel(path.resolve(opts.model));
      let failures = 0;
      try {
        for (const file of files) {
          try {
            const bytes = await readFile(file);
            const p = await model.predict(bytes, { heatmap: true });
            const line: Record<string, unknown> = { file, label: p.label, probabilities: p.probabilities, box: p.box, peak: p.peak, timings: p.timings };
            if (opts.heatmap) {
              const out = overlayPath(opts.heatmap, file, files.length > 1);
              await writeFile(out, await renderOverlay(bytes, p));
              line.heatmap = out;
            }
            process.stdout.write(`${JSON.stringify(line)}\n`);
          } catch (error) {
            if (!(error instanceof ImageDecodeError) && (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
            failures++;
            process.stdout.write(`${JSON.stringify({ file, error: (error as Error).message })}\n`);
          }
        }
      } finally {
        model.dispose();
      }
      if (failures > 0) process.exitCode = 1;
    });
}
