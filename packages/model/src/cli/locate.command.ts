import type { Command } from 'commander';
import path from 'node:path';
import { trainLocator } from '../train/train-locator.js';
import { intOption } from './options.js';
import { epochLine } from './progress.js';

export function registerLocateCommand(program: Command): void {
  program
    .command('locate')
    .description("train a tumour locator head on the model's own features for the outlines of its train/val images, and add it to the artifact as a new version")
    .requiredOption('--model <dir>', 'artifact folder of a trained tumor-binary model')
    .requiredOption('--data <dir>', 'the dataset the model was trained on (its split.json names the images)')
    .requiredOption('--outlines <file>', 'tumour outlines (VIA JSON keyed by path relative to --data)')
    .option('--epochs <n>', 'epochs (the one with the lowest validation loss is kept; the last when the split has no validation images)', intOption, 40)
    .option('--seed <n>', 'seed of the initial weights and the batch order', intOption, 1)
    .option('--cache <dir>', 'preprocessed-image cache', 'data/cache')
    .action(async (opts: { model: string; data: string; outlines: string; epochs: number; seed: number; cache: string }) => {
      const manifest = await trainLocator({
        modelDir: path.resolve(opts.model),
        dataDir: path.resolve(opts.data),
        outlinesFile: path.resolve(opts.outlines),
        epochs: opts.epochs,
        seed: opts.seed,
        cacheDir: path.resolve(opts.cache),
        command: `btd ${process.argv.slice(2).join(' ')}`,
        onEpoch: (e) => process.stderr.write(epochLine(e, 'hit')),
      });
      const test = manifest.metrics?.test as { location?: unknown } | undefined;
      process.stdout.write(`${JSON.stringify({ version: manifest.version, locator: manifest.locator, location: test?.location }, null, 2)}\n`);
    });
}
