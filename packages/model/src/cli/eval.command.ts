import type { Command } from 'commander';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { evaluateModel } from '../eval/evaluate.js';
import { readOutlines } from '../eval/outlines.js';
import { loadModel } from '../model/loaded-model.js';
import { intOption } from './options.js';

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('evaluate a model artifact on a folder with one sub-folder per class')
    .requiredOption('--model <dir>', 'model artifact folder')
    .requiredOption('--data <dir>', 'evaluation folder (one sub-folder per class; yes/no/notumor accepted)')
    .option('--outlines <file>', 'tumour outlines (VIA JSON keyed by path relative to --data) for location metrics')
    .option('--max-images <n>', 'evaluate at most this many images', intOption)
    .option('--cache <dir>', 'preprocessed-image cache (off by default)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: { model: string; data: string; outlines?: string; maxImages?: number; cache?: string; json?: boolean }) => {
      const backend = await initBackend();
      const model = await loadModel(path.resolve(opts.model));
      try {
        const outlines = opts.outlines ? await readOutlines(path.resolve(opts.outlines)) : undefined;
        const result = await evaluateModel(model, path.resolve(opts.data), {
          outlines,
          maxImages: opts.maxImages,
          cacheDir: opts.cache ? path.resolve(opts.cache) : undefined,
        });
        const output = {
          model: { name: model.manifest.name, version: model.manifest.version, task: model.manifest.task },
          backend: backend.name,
          ...result,
          ...(result.location ? { pointingGame: result.location.pointingGame, iou50: result.location.iou50 } : {}),
        };
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(output)}\n`);
          return;
        }
        const pct = (v: number | undefined) => (v === undefined ? '–' : `${(100 * v).toFixed(2)}%`);
        console.log(`${output.model.name} ${output.model.version} on ${opts.data}: n=${result.n}`);
        console.log(`accuracy ${pct(result.accuracy)}  precision ${pct(result.precision)}  recall ${pct(result.recall)}  F1 ${pct(result.f1)}  specificity ${pct(result.specificity)}${result.auc === undefined ? '' : `  AUC ${result.auc.toFixed(4)}`}`);
        console.log(`confusion (rows actual ${result.classes.join('/')}): ${JSON.stringify(result.confusion)}`);
        if (result.location) console.log(`location: pointing game ${pct(result.location.pointingGame)}, IoU≥0.5 ${pct(result.location.iou50)} on ${result.location.n} outlined images`);
        if (result.rejected.length > 0) console.log(`rejected ${result.rejected.length} unreadable files: ${result.rejected.map((r) => `${r.relPath} (${r.reason})`).join('; ')}`);
      } finally {
        model.dispose();
      }
    });
}
