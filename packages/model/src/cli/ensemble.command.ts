import type { Command } from 'commander';
import path from 'node:path';
import { buildEnsemble } from '../train/build-ensemble.js';

interface EnsembleCommandOptions {
  members: string[];
  out: string;
  data: string;
  testData?: string;
  outlines?: string;
  cache: string;
}

export function registerEnsembleCommand(program: Command): void {
  program
    .command('ensemble')
    .description('combine models trained on one split into one artifact that averages them, and evaluate it on that split')
    .requiredOption('--members <dirs...>', 'artifact folders of the members (two or more, same task and split)')
    .requiredOption('--out <dir>', 'artifact folder to write')
    .requiredOption('--data <dir>', 'the dataset the members were trained on (their split.json names the images)')
    .option('--test-data <dir>', 'the separate test folder the members were tested on')
    .option('--outlines <file>', 'tumour outlines (VIA JSON) for location metrics on the test split')
    .option('--cache <dir>', 'preprocessed-image cache', 'data/cache')
    .action(async (opts: EnsembleCommandOptions) => {
      const manifest = await buildEnsemble({
        memberDirs: opts.members.map((dir) => path.resolve(dir)),
        outDir: path.resolve(opts.out),
        dataDir: path.resolve(opts.data),
        testDataDir: opts.testData ? path.resolve(opts.testData) : undefined,
        outlinesFile: opts.outlines ? path.resolve(opts.outlines) : undefined,
        cacheDir: path.resolve(opts.cache),
        command: `btd ${process.argv.slice(2).join(' ')}`,
      });
      process.stdout.write(`${JSON.stringify({ outDir: opts.out, version: manifest.version, metrics: manifest.metrics }, null, 2)}\n`);
    });
}
