import type { Command } from 'commander';
import path from 'node:path';
import { fitArtifactTypicality } from '../train/artifact-typicality.js';
import { fractionOrOneOption, nonNegativeOption, positiveOption } from './options.js';

interface TypicalityCommandOptions {
  model: string;
  data: string;
  quantile?: number;
  margin?: number;
  ridge?: number;
  cache?: string;
}

export function registerTypicalityCommand(program: Command): void {
  program
    .command('typicality')
    .description("fit the check that refuses images unlike a model's training scans on its split's training images, as a new version")
    .requiredOption('--model <dir>', 'artifact folder (single model or ensemble) with its split.json')
    .requiredOption('--data <dir>', 'the dataset its split.json names')
    .option('--quantile <q>', "quantile of the training images' distances that sets the limit (default 0.999)", fractionOrOneOption)
    .option('--margin <factor>', 'factor on that quantile (default 1.1)', positiveOption)
    .option('--ridge <share>', 'share of the mean variance added to each variance (default 0.001)', nonNegativeOption)
    .option('--cache <dir>', 'preprocessed-image cache (off by default)')
    .action(async (opts: TypicalityCommandOptions) => {
      const manifest = await fitArtifactTypicality({
        modelDir: path.resolve(opts.model),
        dataDir: opts.data,
        quantile: opts.quantile,
        margin: opts.margin,
        ridge: opts.ridge,
        cacheDir: opts.cache ? path.resolve(opts.cache) : undefined,
        command: `btd ${process.argv.slice(2).join(' ')}`,
      });
      process.stdout.write(`${JSON.stringify({ model: opts.model, version: manifest.version, typicality: manifest.typicality }, null, 2)}\n`);
    });
}
