import type { Command } from 'commander';
import path from 'node:path';
import { isTask } from '../model/tasks.js';
import type { AugmentationConfig } from '../train/augmentation.js';
import { DEFAULT_AVERAGE_DECAY, trainModel } from '../train/train-model.js';
import { createProgress, epochLine } from './progress.js';
import type { SelectBy } from '../train/training-loop.js';
import { augmentationOption, claheOption, fractionOption, intOption, listOption, nonNegativeOption, positiveOption, selectByOption, withServingViewOptions } from './options.js';

export function registerTrainCommand(program: Command): void {
  const command = program
    .command('train')
    .description('train a model on a folder with one sub-folder per class, evaluate it and write the artifact')
    .requiredOption('--task <task>', 'tumor-binary | tumor-type')
    .requiredOption('--data <dir>', 'training data folder (one sub-folder per class)')
    .option('--test-data <dir>', 'separate test folder (else a leak-free test split is held out of --data)')
    .option('--extra-train-data <dir>', 'another folder whose images join the training split only, minus near-duplicates of --data (for tumor-type, yes/ or tumor/ may hold tumours of unknown type)')
    .option('--exclude-near-duplicates-of <dir>', 'hold out every image of --data with a near-duplicate in this folder (to pretrain for a model evaluated there)')
    .option('--init-from <dir>', "start from this artifact's weights (the classifier's too when its classes are the task's); it must have been trained without copies of --data's held-out images")
    .option('--init-member <n>', 'with an ensemble as --init-from: start from this member (from 1)', intOption)
    .option('--out <dir>', 'artifact folder (default models/<task>)')
    .option('--epochs <n>', 'maximum epochs', intOption, 30)
    .option('--batch-size <n>', 'images per step', intOption, 32)
    .option('--input-size <n>', 'model input side in pixels', intOption, 96)
    .option('--clahe <max-slope>', 'equalise local contrast in the preprocessing (sharp clahe over regions a sixth of the input), with this contrast limit, e.g. 3', claheOption)
    .option('--lr <rate>', 'peak learning rate', positiveOption, 2e-3)
    .option('--average-decay <d>', 'decay per step of the moving average of the weights for validation and the artifact: 0 (off) or more, below 1', fractionOption, DEFAULT_AVERAGE_DECAY)
    .option('--patience <n>', 'early stopping patience (epochs)', intOption, 10)
    .option('--seed <n>', 'seed for split, shuffling and augmentation', intOption, 1)
    .option('--split-seed <n>', 'seed for the split only (default: --seed), e.g. to train ensemble members on one split', intOption)
    .option('--patients <file>', 'which patient each image belongs to: a CSV with the columns path and patient, or a JSON object from path to patient (a DICOM file\'s Patient ID serves without it); one patient\'s images share a split')
    .option('--split <file>', "reuse the train/validation/test assignment of a split.json (e.g. a shipped model's), to compare candidates on one split")
    .option('--validation-joins-training', 'train on the validation images too (a final run of a schedule chosen on validation; needs --select-by last, fits no temperature)')
    .option('--workers <n>', 'gradient worker threads (default: one per core)', intOption)
    .option('--filters <list>', 'filters per block, e.g. 16,32,64,128', listOption)
    .option('--convs-per-block <n>', 'convolutions per block', intOption)
    .option('--residual', 'residual blocks: each block adds its input (1×1 projected where the width changes) before its last ReLU')
    .option('--dropout <p>', 'dropout before the classifier', fractionOption)
    .option('--augmentation <list>', 'changes to the default augmentation, e.g. rotateDeg=20,scale=0.15,shift=0.1,gamma=0.3,sharpen=0.5,noise=0.02', augmentationOption)
    .option('--balance-extra-train-data', "in the loss, balance the classes of --extra-train-data's images among themselves too, so neither source moves the other's prior")
    .option('--extra-per-epoch <n>', "each epoch trains on n of --extra-train-data's images, drawn afresh, besides all of --data's training images", intOption)
    .option('--weight-by-group', 'in the loss, each near-duplicate group of training images weighs as one image (class totals kept)')
    .option('--outline-guidance <weight>', "on outlined training images, a loss term of this weight (e.g. 0.2) asks the classifier's activation map to lie inside the outline (needs --outlines; 0: off)", nonNegativeOption, 0)
    .option('--mixup <alpha>', 'blend image pairs and their targets by a Beta(alpha, alpha) weight, e.g. 0.2 (0: off)', nonNegativeOption, 0)
    .option('--sharpness <rho>', 'sharpness-aware minimisation: take each gradient at weights moved by rho uphill, e.g. 0.05 (0: off; a step costs two passes)', nonNegativeOption, 0)
    .option('--select-by <metric>', 'what picks the best epoch and stops early: accuracy (validation loss breaks ties), loss, or last (keep the final epoch, never stop early)', selectByOption, 'accuracy')
    .option('--max-images <n>', 'use at most this many images (quick runs)', intOption)
    .option('--outlines <file>', 'tumour outlines (VIA JSON) for location metrics on the test split (and --outline-guidance)')
    .option('--cache <dir>', 'preprocessed-image cache', 'data/cache')
    .option('--checkpoint <dir>', 'write a checkpoint every epoch here')
    .option('--resume <dir>', 'resume from a checkpoint folder, with the settings its run was started with');
  withServingViewOptions(command)
    .action(async (opts: Record<string, string | number | boolean | number[] | Partial<AugmentationConfig> | undefined>) => {
      const task = String(opts.task);
      if (!isTask(task)) throw new Error(`--task must be tumor-binary or tumor-type, not ${task}`);
      if (opts.split !== undefined && opts.splitSeed !== undefined) throw new Error('--split reuses a saved split; --split-seed draws a new one: give one of them');
      const steps = createProgress('step');
      const prep = createProgress('preprocess');
      let epochLabel = 1;
      const result = await trainModel({
        task,
        dataDir: path.resolve(String(opts.data)),
        testDataDir: opts.testData ? path.resolve(String(opts.testData)) : undefined,
        extraTrainDir: opts.extraTrainData ? path.resolve(String(opts.extraTrainData)) : undefined,
        excludeNearDuplicatesOf: opts.excludeNearDuplicatesOf ? path.resolve(String(opts.excludeNearDuplicatesOf)) : undefined,
        patientsFile: opts.patients ? path.resolve(String(opts.patients)) : undefined,
        initFrom: opts.initFrom ? path.resolve(String(opts.initFrom)) : undefined,
        initMember: opts.initMember as number | undefined,
        outDir: path.resolve(String(opts.out ?? `models/${task}`)),
        epochs: opts.epochs as number,
        batchSize: opts.batchSize as number,
        inputSize: opts.inputSize as number,
        claheMaxSlope: opts.clahe as number | undefined,
        learningRate: opts.lr as number,
        patience: opts.patience as number,
        averageDecay: opts.averageDecay as number,
        seed: opts.seed as number,
        splitSeed: opts.splitSeed as number | undefined,
        splitFile: opts.split ? path.resolve(String(opts.split)) : undefined,
        validationJoinsTraining: opts.validationJoinsTraining === true,
        workers: opts.workers as number | undefined,
        filters: opts.filters as number[] | undefined,
        convsPerBlock: opts.convsPerBlock as number | undefined,
        residual: opts.residual === true,
        dropout: opts.dropout as number | undefined,
        augmentation: opts.augmentation as Partial<AugmentationConfig> | undefined,
        mixup: opts.mixup as number,
        weightByGroup: opts.weightByGroup === true,
        balanceExtraTrainData: opts.balanceExtraTrainData === true,
        extraPerEpoch: opts.extraPerEpoch as number | undefined,
        outlineGuidance: opts.outlineGuidance as number,
        sharpness: opts.sharpness as number,
        selectBy: opts.selectBy as SelectBy,
        testTimeRotations: opts.testTimeRotations as number[] | undefined,
        testTimeRotationsBelow: opts.testTimeRotationsBelow as number | undefined,
        maxImages: opts.maxImages as number | undefined,
        outlinesFile: opts.outlines ? path.resolve(String(opts.outlines)) : undefined,
        cacheDir: path.resolve(String(opts.cache)),
        checkpointDir: opts.checkpoint ? path.resolve(String(opts.checkpoint)) : undefined,
        resumeFrom: opts.resume ? path.resolve(String(opts.resume)) : undefined,
        command: `btd ${process.argv.slice(2).join(' ')}`,
        onProgress: (stage, done, total) => {
          prep.update(done, total, stage);
          if (done === total) prep.stop();
        },
        onStep: (done, total, loss) => steps.update(done, total, `epoch ${epochLabel} loss ${loss.toFixed(4)}`),
        onEpoch: (e) => {
          steps.stop();
          epochLabel = e.epoch + 1;
          process.stderr.write(epochLine(e, 'acc', ` lr ${e.learningRate.toExponential(2)}`));
        },
      });
      process.stdout.write(`${JSON.stringify({ outDir: result.outDir, version: result.manifest.version, metrics: result.manifest.metrics }, null, 2)}\n`);
    });
}
