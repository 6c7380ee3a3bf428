import type { Command } from 'commander';
import path from 'node:path';
import { calibrateArtifact } from '../train/calibrate-artifact.js';
import { splitDataFrom, withServingViewOptions, withSplitDataOptions, type SplitDataFlags } from './options.js';

interface CalibrateCommandOptions extends SplitDataFlags {
  model: string;
  testTimeRotations?: number[];
  testTimeRotationsBelow?: number;
}

export function registerCalibrateCommand(program: Command): void {
  const command = program
    .command('calibrate')
    .description("fit a trained artifact's temperature on its validation images and re-evaluate it, as a new version")
    .requiredOption('--model <dir>', 'artifact folder (single model or ensemble) with its split.json');
  withSplitDataOptions(withServingViewOptions(command), 'the model was').action(async (opts: CalibrateCommandOptions) => {
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
