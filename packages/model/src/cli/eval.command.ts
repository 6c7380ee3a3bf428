import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { listImagesByFolder, listLabeledImages, subsetListing, type DatasetListing } from '../data/dataset-folder.js';
import { readSplitFile, splitNames } from '../data/split-file.js';
import { DETECTION_TASK, evaluateModel, type FolderEvaluationOptions } from '../eval/evaluate.js';
import { readOutlines } from '../eval/outlines.js';
import { describePatientVerdicts } from '../eval/patient-verdicts.js';
import { writeReviewPack } from '../eval/review-pack.js';
import { checkRecordName, recordEvaluation } from '../eval/recorded-evaluation.js';
import type { Rate } from '../eval/metrics.js';
import { measured, percent, unmeasuredRateNotes } from '../eval/unmeasured-rates.js';
import { loadModel } from '../model/loaded-model.js';
import type { Task } from '../model/tasks.js';
import { collectOption, intOption } from './options.js';

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('evaluate a model artifact on a folder with one sub-folder per class')
    .requiredOption('--model <dir>', 'model artifact folder')
    .requiredOption('--data <dir>', 'evaluation folder (one sub-folder per class; yes/no/notumor accepted)')
    .option('--outlines <file>', 'tumour outlines (VIA JSON keyed by path relative to --data) for location metrics')
    .option('--max-images <n>', 'evaluate at most this many images', intOption)
    .option('--split <file>', 'evaluate only the images a saved split.json puts in --set (its paths are relative to --data)')
    .option('--set <name>', 'the set of --split to evaluate: train, val or test', 'test')
    .option('--without-copies-in <dir>', 'leave out every image with a near-duplicate (mirrored copies included) among the images of this folder (any sub-folder); repeatable', collectOption, [])
    .option(
      '--without-copies-in-training',
      "with --split: leave out every image with a near-duplicate among the split's training images too, and among the model's own when its split.json lists the images of --data",
    )
    .option('--patients <file>', 'which patient each image belongs to (CSV with the columns path and patient, or JSON); default patients.csv or patients.json in --data. Errors are then counted, and the interval resampled, by patient')
    .option('--as-detection', 'score as a tumour detector on a tumor/no_tumor folder: every class but no_tumor counts as a tumour')
    .option('--cache <dir>', 'preprocessed-image cache (off by default)')
    .option('--record <name>', "store the result in the model's manifest as metrics.<name>, e.g. testWithoutCopiesInTraining")
    .option('--review <dir>', 'write each image predicted wrong with its heatmap overlay, and an index.md listing them, into this folder')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: EvalOptions) => {
      if (opts.record) checkRecordName(opts.record);
      const backend = await initBackend();
      const model = await loadModel(path.resolve(opts.model));
      try {
        const outlines = opts.outlines ? await readOutlines(path.resolve(opts.outlines)) : undefined;
        const result = await evaluateModel(model, path.resolve(opts.data), {
          outlines,
          maxImages: opts.maxImages,
          cacheDir: opts.cache ? path.resolve(opts.cache) : undefined,
          asDetection: opts.asDetection,
          patientsFile: opts.patients ? path.resolve(opts.patients) : undefined,
          ...(await imageSelection(opts, model.manifest.task)),
        });
        if (opts.review) {
          const index = await writeReviewPack(model, path.resolve(opts.data), result.misclassified ?? [], path.resolve(opts.review));
          if (!opts.json) console.log(`review: ${index}`);
        }
        if (opts.record) await recordEvaluation(path.resolve(opts.model), opts.record, { ...result }, `btd ${process.argv.slice(2).join(' ')}`);
        const output = {
          model: { name: model.manifest.name, version: model.manifest.version, task: model.manifest.task },
          backend: backend.name,
          ...result,
          ...(result.location ? { pointingGame: result.location.pointingGame, iou50: result.location.iou50 } : {}),
        };
        if (opts.json) process.stdout.write(`${JSON.stringify(output)}\n`);
        else for (const line of evaluationLines(result, `${output.model.name} ${output.model.version} on ${opts.data}`)) console.log(line);
      } finally {
        model.dispose();
      }
    });
}

/** What `evaluateModel` returns for a folder. */
type FolderEvaluation = Awaited<ReturnType<typeof evaluateModel>>;

/** The evaluation as the lines `btd eval` prints without --json. */
function evaluationLines(result: FolderEvaluation, title: string): string[] {
  // A rate nothing measured (null: specificity without negatives, AUC of one class) shows as a dash, with why.
  const pct = (v: Rate | undefined) => percent(v, 2);
  const auc = result.auc === undefined ? '' : `  AUC ${measured(result.auc) ? result.auc.toFixed(4) : '–'}`;
  const lines = [`${title}: n=${result.n}`];
  lines.push(`accuracy ${pct(result.accuracy)}  precision ${pct(result.precision)}  recall ${pct(result.recall)}  F1 ${pct(result.f1)}  specificity ${pct(result.specificity)}${auc}`);
  lines.push(...unmeasuredRateNotes(result).map((note) => `not measured (–): ${note}`));
  lines.push(`confusion (rows actual ${result.classes.join('/')}): ${JSON.stringify(result.confusion)}`);
  if (result.byGroup) {
    const g = result.byGroup;
    lines.push(`accuracy 95% interval (near-duplicate groups resampled) ${pct(g.accuracyInterval[0])}–${pct(g.accuracyInterval[1])}; each group counted once: ${pct(g.accuracy)} of ${g.groups} groups (${g.groupsWithErrors} with errors)`);
  }
  if (result.byPatient) lines.push(describePatientVerdicts(result.byPatient));
  for (const e of result.misclassified ?? []) lines.push(`wrong: ${e.relPath} ${e.actual} called ${e.predicted} (p ${e.probability.toFixed(3)}; ${e.groupSize} in its group)`);
  if (result.location) lines.push(`location: pointing game ${pct(result.location.pointingGame)}, IoU≥0.5 ${pct(result.location.iou50)} on ${result.location.n} outlined images`);
  if (result.typicality) {
    const { refused, limit, files } = result.typicality;
    lines.push(`unlike the training scans (distance above ${limit.toFixed(1)}), so refused when served: ${refused}${refused > 0 ? ` (${files.join(', ')})` : ''}; the rates above count them`);
  }
  if (result.leftOutAsCopies !== undefined) lines.push(`left out ${result.leftOutAsCopies} images with a near-duplicate among the images to leave out`);
  if (result.rejected.length > 0) lines.push(`rejected ${result.rejected.length} unreadable files: ${result.rejected.map((r) => `${r.relPath} (${r.reason})`).join('; ')}`);
  return lines;
}

interface EvalOptions {
  model: string;
  data: string;
  outlines?: string;
  maxImages?: number;
  split?: string;
  set: string;
  withoutCopiesIn: string[];
  withoutCopiesInTraining?: boolean;
  cache?: string;
  asDetection?: boolean;
  patients?: string;
  record?: string;
  review?: string;
  json?: boolean;
}

/** The images `--split`, `--set` and the `--without-copies-in…` options select. */
async function imageSelection(opts: EvalOptions, task: Task): Promise<Pick<FolderEvaluationOptions, 'only' | 'withoutCopiesIn'>> {
  if (opts.withoutCopiesInTraining && !opts.split) throw new Error('--without-copies-in-training needs --split');
  // Which class a reference image holds does not matter: any copy is left out.
  const references = await Promise.all(opts.withoutCopiesIn.map((dir) => listImagesByFolder(path.resolve(dir))));
  if (!opts.split) return references.length > 0 ? { withoutCopiesIn: mergeListings(references) } : {};
  if (!['train', 'val', 'test'].includes(opts.set)) throw new Error(`--set must be train, val or test, not ${opts.set}`);
  const split = await readSplitFile(path.resolve(opts.split));
  const namesIn = (set: string) => splitNames(split, set);
  const only = namesIn(opts.set);
  if (only.size === 0) throw new Error(`${opts.split} puts no images in ${opts.set}`);
  // The split lists --data's own images, labelled as --data is (tumour / no tumour with --as-detection).
  const dataTask = opts.asDetection ? DETECTION_TASK : task;
  if (opts.withoutCopiesInTraining) {
    const listing = await listLabeledImages(path.resolve(opts.data), dataTask);
    const trained = new Set([...namesIn('train'), ...(await imagesTheModelTrainedOn(path.resolve(opts.model), listing))]);
    references.push(subsetListing(listing, trained));
  }
  return { only, ...(references.length > 0 ? { withoutCopiesIn: mergeListings(references) } : {}) };
}

/**
 * The training images of the model's own `split.json` when it lists exactly the images of the
 * evaluated folder (the same dataset), else none. A model trained with its validation images, or on
 * a split other than the one evaluated, has trained on images that split does not call training.
 */
async function imagesTheModelTrainedOn(modelDir: string, listing: DatasetListing): Promise<string[]> {
  const file = path.join(modelDir, 'split.json');
  if (!existsSync(file)) return [];
  const { assignments } = await readSplitFile(file);
  const present = new Set(listing.files.map((f) => f.relPath));
  const sameImages = assignments.length === present.size && assignments.every((a) => present.has(a.relPath));
  return sameImages ? assignments.filter((a) => a.split === 'train').map((a) => a.relPath) : [];
}

function mergeListings(listings: DatasetListing[]): DatasetListing {
  return { files: listings.flatMap((l) => l.files), ignoredFolders: listings.flatMap((l) => l.ignoredFolders) };
}
