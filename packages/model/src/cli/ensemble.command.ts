import type { Command } from 'commander';
import path from 'node:path';
import { buildEnsemble } from '../train/build-ensemble.js';
import { splitDataFrom, withSplitDataOptions, type SplitDataFlags } from './options.js';

interface EnsembleCommandOptions extends SplitDataFlags {
  members: string[];
  out: string;
}

export function registerEnsembleCommand(program: Command): void {
  const command = program
    .command('ensemble')
    .description('combine models trained on one split into one artifact that averages them, and evaluate it on that split')
    .requiredOption('--members <dirs...>', 'artifact folders of the members (two or more, same task and split)')
    .requiredOption('--out <dir>', 'artifact folder to write');
  withSplitDataOptions(command, 'the members were').action(async (opts: EnsembleCommandOptions) => {
    const manifest = await buildEnsemble({
      ...splitDataFrom(opts),
      memberDirs: opts.members.map((dir) => path.resolve(dir)),
      outDir: path.resolve(opts.out),
      command: `btd ${process.argv.slice(2).join(' ')}`,
    });
    process.stdout.write(`${JSON.stringify({ outDir: opts.out, version: manifest.version, calibration: manifest.calibration, metrics: manifest.metrics }, null, 2)}\n`);
  });
}
