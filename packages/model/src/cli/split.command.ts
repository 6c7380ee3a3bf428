import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crossSplitDuplicates, patientsRecord, prepareTaskData } from '../data/prepare-task-data.js';
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
      // A saved split is reused with every straddling group moved out of training: what moved is what leaked.
      const leakedIntoTraining = prepared.reusedSplit?.movedOutOfTraining ?? [];
      const patients = patientsRecord(prepared);
      const counts: Record<string, number> = {};
      for (const a of prepared.split.assignments) counts[a.split] = (counts[a.split] ?? 0) + 1;
      const external = prepared.external;
      const report = {
        images: prepared.dataset.files.length,
        rejected: prepared.dataset.rejected,
        duplicateThreshold: prepared.duplicateThreshold,
        nearDuplicateGroups: prepared.duplicateGroups,
        imagesInDuplicateGroups: countGrouped(prepared.split.assignments.map((a) => a.group)),
        splitCounts: counts,
        straddlingGroups: prepared.straddling,
        crossSplitNearDuplicates: crossSplitDuplicates(prepared),
        ...(patients ? { patients } : {}),
        fingerprint: prepared.split.fingerprint,
        ...(opts.split ? { savedSplit: { file: opts.split, trainingImagesWithNearDuplicateHeldOut: leakedIntoTraining.length, examples: leakedIntoTraining.slice(0, 10) } } : {}),
        ...(external
          ? {
              externalTest: {
                images: external.dataset.files.length,
                withNearDuplicateInData: external.hasDuplicateInTraining.filter(Boolean).length,
                withPatientInData: external.sharesPatientWithTraining.filter(Boolean).length,
              },
            }
          : {}),
      };
      if (opts.out) await writeFile(path.resolve(opts.out), JSON.stringify({ ...report, assignments: prepared.split.assignments }, null, 1));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return;
      }
      console.log(`${report.images} images, ${report.rejected.length} rejected; ${report.nearDuplicateGroups} near-duplicate groups (${report.imagesInDuplicateGroups} images, correlation ≥ ${report.duplicateThreshold})`);
      console.log(`split ${JSON.stringify(counts)}, fingerprint ${report.fingerprint.slice(0, 16)}`);
      if (report.savedSplit) {
        console.log(`saved split ${opts.split}: ${leakedIntoTraining.length} training images have a near-duplicate among its validation or test images${leakedIntoTraining.length ? ` (e.g. ${leakedIntoTraining.slice(0, 3).join(', ')})` : ''}`);
      } else {
        console.log(`groups straddling splits: ${report.straddlingGroups}; near-duplicate pairs across splits (recomputed): ${report.crossSplitNearDuplicates}`);
      }
      if (patients) {
        const fromFile = patients.file ? `; ${patients.file}: ${patients.unmatchedEntries} entries match no image` : '';
        console.log(
          `${patients.patients} patients (${patients.imagesWithPatient} images), ${patients.studies} DICOM studies, ${patients.multiFrameFiles} multi-frame files: ` +
            `${patients.groupsBefore} groups joined into ${patients.groupsAfter}; patients in more than one split: ${patients.acrossSplits}${fromFile}`,
        );
      }
      if (report.externalTest) {
        const { withNearDuplicateInData, withPatientInData, images } = report.externalTest;
        console.log(`test folder: ${withNearDuplicateInData} of ${images} images have a near-duplicate in the data folder, ${withPatientInData} a patient or study there`);
      }
      const leaks =
        report.straddlingGroups > 0 ||
        report.crossSplitNearDuplicates > 0 ||
        leakedIntoTraining.length > 0 ||
        (patients?.acrossSplits ?? 0) > 0;
      console.log(leaks ? 'LEAKS FOUND' : 'no leaks');
      if (leaks) process.exitCode = 1;
    });
}

function countGrouped(groups: number[]): number {
  const sizes = new Map<number, number>();
  for (const g of groups) sizes.set(g, (sizes.get(g) ?? 0) + 1);
  return [...sizes.values()].filter((s) => s > 1).reduce((a, b) => a + b, 0);
}
