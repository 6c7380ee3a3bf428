import type { Command } from 'commander';
import path from 'node:path';
import { calibrateArtifact } from '../train/calibrate-artifact.js';
import { anglesOption, fractionOrOneOption, splitDataFrom, withSplitDataOptions, type SplitDataFlags } from './options.js';

interface CalibrateCommandOptions extends SplitDataFlags {
  model: string;
  testTimeRotations?: number[];
  testTimeRotationsBelow?: number;
}

export function registerCalibrateCommand(program: Command): void {
  const command = program
    .command('calibrate')
    .description("fit a trained artifact's temperature on its validation images and re-evaluate it, as a new version")
    .requiredOption('--model <dir>', 'artifact folder (single model or ensemble) with its split.json')
    .option('--test-time-rotations <list>', 'also average copies rotated by these degrees, e.g. -5,5 ("none": only the image and its mirror)', anglesOption)
    .option('--test-time-rotations-below <p>', 'rotate only images whose top probability from the image and its mirror is below p, e.g. 0.9', fractionOrOneOption);
  withSplitDataOptions(command, 'the model was').action(async (opts: CalibrateCommandOptions) => {
    const manifest = await calibrateArtifact({
      ...splitDataFrom(opts),
      modelDir: path.resolve(opts.model),
      testTimeRotations: opts.testTimeRotations,
      testTimeRotationsBelow: opts.testTimeRotationsBelow,
      command: `btd ${process.argv.slice(2).join(' ')}`,
    });
    process.stdout.write(`${JSON.stringify({ model: opts.model, version: manifest.version, calibration: manifest.calibration, metrics: manifest.metrics }, null, 2)}\n`);
  });
}
