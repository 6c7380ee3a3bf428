import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hasLeaks, leakageReport, leakageReportLines } from '../data/leakage-report.js';
import { prepareTaskData } from '../data/prepare-task-data.js';
import { readSplitFile } from '../data/split-file.js';
import { isTask } from '../model/tasks.js';
import { intOption } from './options.js';

export function registerSplitCommand(program: Command): void {
  program
    .command('split')
    .description('find near-duplicate groups, split without leaks, save the split and print a leakage report')
    .requiredOption('--task <task>', 'tumor-binary | tumor-type')
    .requiredOption('--data <dir>', 'data folder (one sub-folder per class)')
    .option('--test-data <dir>', 'separate test folder: report how many of its images have a near-duplicate in --data')
    .option('--patients <file>', 'which patient each image belongs to: a CSV with the columns path and patient, or a JSON object from path to patient (a DICOM file\'s Patient ID serves without it)')
    .option('--input-size <n>', 'preprocessing size', intOption, 96)
    .option('--seed <n>', 'split seed', intOption, 1)
    .option('--split <file>', "check a saved split.json (e.g. a shipped model's) instead of drawing one: report the training images that have a near-duplicate in its validation or test images")
    .option('--out <file>', 'write the split (file, label, split, group) as JSON')
    .option('--cache <dir>', 'preprocessed-image cache', 'data/cache')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { task: string; data: string; testData?: string; patients?: string; inputSize: number; seed: number; split?: string; out?: string; cache: string; json?: boolean }) => {
      if (!isTask(opts.task)) throw new Error(`--task must be tumor-binary or tumor-type, not ${opts.task}`);
      const prepared = await prepareTaskData({
        task: opts.task,
        dataDir: path.resolve(opts.data),
        testDataDir: opts.testData ? path.resolve(opts.testData) : undefined,
        patientsFile: opts.patients ? path.resolve(opts.patients) : undefined,
        inputSize: opts.inputSize,
        seed: opts.seed,
        savedSplit: opts.split ? await readSplitFile(path.resolve(opts.split)) : undefined,
        cacheDir: path.resolve(opts.cache),
      });
      const report = leakageReport(prepared, opts.split);
      if (opts.out) await writeFile(path.resolve(opts.out), JSON.stringify({ ...report, assignments: prepared.split.assignments }, null, 1));
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else for (const line of leakageReportLines(report)) console.log(line);
      if (hasLeaks(report)) process.exitCode = 1;
    });
}
