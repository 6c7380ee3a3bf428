import { InvalidArgumentError, type Command } from 'commander';
import path from 'node:path';
import type { SplitData } from '../train/split-evaluation.js';
import { DEFAULT_AUGMENTATION, type AugmentationConfig } from '../train/augmentation.js';
import type { SelectBy } from '../train/training-loop.js';
import { isProbabilityBound, isRotationList } from '../model/manifest.js';

export function intOption(value: string): number {
  const n = Number.parseInt(value, 10);
  if (!Number.isFinite(n) || n <= 0 || String(n) !== value.trim()) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/** Collects a repeatable option's values in order. */
export function collectOption(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function listOption(value: string): number[] {
  return value.split(',').map((v) => intOption(v));
}

/** `-5,5`: angles in degrees, each non-zero and within ±45; `none`: an empty list. */
function anglesOption(value: string): number[] {
  if (value.trim() === 'none') return [];
  const angles = value.split(',').map(Number);
  if (!isRotationList(angles)) throw new InvalidArgumentError('expected non-zero angles in degrees within ±45, e.g. -5,5, or none');
  return angles;
}

export function selectByOption(value: string): SelectBy {
  if (value !== 'accuracy' && value !== 'loss' && value !== 'last') throw new InvalidArgumentError('expected accuracy, loss or last');
  return value;
}

export function fractionOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('expected a number from 0 up to (not including) 1');
  return n;
}

export function fractionOrOneOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !isProbabilityBound(n)) throw new InvalidArgumentError('expected a number above 0, at most 1');
  return n;
}

export function positiveOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number above 0');
  return n;
}

export function nonNegativeOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
}

/** `3`: the contrast limit of local contrast equalisation, a whole number as sharp's clahe takes it (0: off). */
export function claheOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 100) throw new InvalidArgumentError('expected a whole number from 0 (off) to 100');
  return n;
}

/** `rotateDeg=20,scale=0.15,flip=false`: changes to the default augmentation, key by key. */
export function augmentationOption(value: string): Partial<AugmentationConfig> {
  const config: Record<string, number | boolean> = {};
  for (const pair of value.split(',')) {
    const [key = '', raw = ''] = pair.split('=').map((s) => s.trim());
    const current = (DEFAULT_AUGMENTATION as unknown as Record<string, number | boolean>)[key];
    if (current === undefined) throw new InvalidArgumentError(`unknown augmentation "${key}"; known: ${Object.keys(DEFAULT_AUGMENTATION).join(', ')}`);
    if (typeof current === 'boolean') {
      if (raw !== 'true' && raw !== 'false') throw new InvalidArgumentError(`${key} must be true or false`);
      config[key] = raw === 'true';
    } else {
      const n = Number(raw);
      if (raw === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${key} must be a number ≥ 0, not "${raw}"`);
      config[key] = n;
    }
  }
  return config as Partial<AugmentationConfig>;
}

/** The command-line form of {@link SplitData}. */
export interface SplitDataFlags {
  data: string;
  testData?: string;
  outlines?: string;
  cache: string;
}

/** Adds the options that say where a saved split's images are (`btd ensemble`, `btd calibrate`). */
export function withSplitDataOptions(command: Command, trainedOn: string): Command {
  return command
    .requiredOption('--data <dir>', `the dataset ${trainedOn} trained on (the split.json names the images)`)
    .option('--test-data <dir>', `the separate test folder ${trainedOn} tested on`)
    .option('--outlines <file>', 'tumour outlines (VIA JSON) for location metrics on the test split')
    .option('--cache <dir>', 'preprocessed-image cache', 'data/cache');
}

export function splitDataFrom(flags: SplitDataFlags): SplitData {
  return {
    dataDir: path.resolve(flags.data),
    testDataDir: flags.testData ? path.resolve(flags.testData) : undefined,
    outlinesFile: flags.outlines ? path.resolve(flags.outlines) : undefined,
    cacheDir: path.resolve(flags.cache),
  };
}

/** Options of `btd train` and `btd calibrate` that set how the artifact is served. */
export function withServingViewOptions(command: Command): Command {
  return command
    .option('--test-time-rotations <list>', 'also average copies rotated by these degrees, e.g. -5,5 ("none": only the image and its mirror)', anglesOption)
    .option('--test-time-rotations-below <p>', 'rotate only images whose top probability from the image and its mirror is below p, e.g. 0.9', fractionOrOneOption);
}
