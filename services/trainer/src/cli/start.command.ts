import path from 'node:path';
import { Option, type Command } from 'commander';
import type { ModelTask } from '@btd/shared';
import { parseDatasetSpec } from '../dataset-spec.js';
import { addApiOptions, resolveConnection } from './api-options.js';
import { TrainingApiClient, type TrainingRequest } from './training-api.client.js';
import { addIntervalOption, watchTraining } from './watch.command.js';
import { decimal, numberList } from './number-list.option.js';
import { wholeNumber } from './whole-number.option.js';

const TASKS = ['tumor-binary', 'tumor-type'] as const satisfies readonly ModelTask[];

interface StartOptions {
  task: ModelTask;
  data: string;
  epochs?: number;
  batchSize?: number;
  inputSize?: number;
  seed?: number;
  maxImages?: number;
  testTimeRotations?: number[];
  testTimeRotationsBelow?: number;
  autoPromote: boolean;
  idempotencyKey?: string;
  watch?: boolean;
  interval: number;
  api?: string;
  key?: string;
}

/** The request body: unset hyper-parameters are left out so the trainer's defaults apply. */
function requestOf(options: StartOptions): TrainingRequest {
  const { epochs, batchSize, inputSize, seed, maxImages, testTimeRotations, testTimeRotationsBelow } = options;
  const hyperParameters = Object.fromEntries(
    Object.entries({ epochs, batchSize, inputSize, seed, maxImages, testTimeRotations, testTimeRotationsBelow }).filter(([, value]) => value !== undefined),
  );
  return {
    task: options.task,
    dataset: parseDatasetSpec(options.data),
    ...(Object.keys(hyperParameters).length > 0 ? { hyperParameters } : {}),
    ...(options.autoPromote ? {} : { autoPromote: false }),
  };
}

export function registerStartCommand(program: Command): void {
  const command = program
    .command('start')
    .description('start a training (admin key); prints its id, or with --watch follows it to the end')
    .addOption(new Option('--task <task>', 'what to train').choices(TASKS).makeOptionMandatory())
    .requiredOption('--data <dataset>', 's3://<prefix>/ in the bucket, or a folder on the trainer under its TRAINER_DATASET_ROOTS (a relative path is read from the trainer\'s working directory)')
    .option('--epochs <n>', 'maximum epochs (1-500)', wholeNumber(1, 500))
    .option('--batch-size <n>', 'images per step (1-512)', wholeNumber(1, 512))
    .option('--input-size <n>', 'model input side in pixels (16-512)', wholeNumber(16, 512))
    .option('--seed <n>', 'seed for split, shuffling and augmentation', wholeNumber(0))
    .option('--max-images <n>', 'use at most this many images (quick runs)', wholeNumber(2))
    .option('--test-time-rotations <list>', 'serve the candidate averaging copies rotated by these degrees, e.g. -5,5', numberList)
    .option('--test-time-rotations-below <p>', 'rotate only images whose top probability from the image and its mirror is below p', decimal)
    .option('--no-auto-promote', 'publish the candidate but do not promote it, even if it passes the gate')
    .option('--idempotency-key <key>', 'the same key from the same client starts the training once')
    .option('--watch', 'follow the training to its end, like `watch`');
  addIntervalOption(addApiOptions(command)).action(async (options: StartOptions) => {
    const connection = resolveConnection(options);
    const request = requestOf(options);
    // The trainer reads the folder, on its own machine: this command's working directory means nothing to it.
    if (request.dataset.kind === 'local' && !path.isAbsolute(request.dataset.path)) {
      process.stderr.write(`btd-trainer: ${request.dataset.path} is read by the trainer, relative to its working directory, not this one\n`);
    }
    const { id } = await new TrainingApiClient(connection).start(request, options.idempotencyKey);
    if (!options.watch) {
      process.stdout.write(`${id}\n`);
      return;
    }
    process.stderr.write(`training ${id} queued\n`);
    await watchTraining(connection, id, options.interval);
  });
}
