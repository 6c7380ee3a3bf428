import { listLabeledImages, subsetListing } from '../data/dataset-folder.js';
import { withPatientsFile, withRecordedPatients } from '../data/patients-file.js';
import { loadPreprocessedDataset, type PreprocessedDataset } from '../data/preprocessed-dataset.js';
import { readSplitFile, splitNames } from '../data/split-file.js';
import { evaluateOnDataset, predictOnDataset, type EvaluationResult } from '../eval/evaluate.js';
import { readOutlines } from '../eval/outlines.js';
import type { ModelManifest } from '../model/manifest.js';
import type { ArtifactEvaluation } from './finish-artifact.js';

/** Where the images of a saved split are. */
export interface SplitData {
  /** The dataset the model was trained on (its split.json names the images). */
  dataDir: string;
  /** The separate test folder the model was tested on, when the split records one. */
  testDataDir?: string;
  /** Tumour outlines, for location metrics on the test split. */
  outlinesFile?: string;
  cacheDir?: string;
}

export interface SplitEvaluationOptions extends SplitData {
  /** The artifact's `split.json`. */
  splitFile: string;
}

/**
 * The evaluation sets of a saved split: its validation and test images and, when the split
 * records a separate test folder, that folder and its part without near-duplicates in training.
 */
export async function splitEvaluation(manifest: ModelManifest, options: SplitEvaluationOptions): Promise<ArtifactEvaluation> {
  const split = await readSplitFile(options.splitFile);
  const outlines = options.outlinesFile ? await readOutlines(options.outlinesFile) : undefined;
  const listed = await listLabeledImages(options.dataDir, manifest.task);
  const listing = { ...listed, files: await withRecordedPatients(listed.files, options.dataDir, manifest.split?.patients?.file) };
  const load = async (name: string): Promise<PreprocessedDataset | undefined> => {
    const names = splitNames(split, name);
    if (names.size === 0) return undefined;
    return loadPreprocessedDataset(subsetListing(listing, names), manifest.preprocessing, { cacheDir: options.cacheDir });
  };
  const [val, test] = [await load('val'), await load('test')];
  const external = split.externalTest && options.testDataDir ? await loadTestFolder(options.testDataDir, manifest, options.cacheDir) : undefined;
  return {
    validation: (served) => Promise.resolve(val ? predictOnDataset(served, val) : undefined),
    metrics: (served) => {
      const metrics: Record<string, EvaluationResult> = {};
      if (test) metrics.test = evaluateOnDataset(served, test, { outlines });
      if (val) metrics.val = evaluateOnDataset(served, val);
      if (external && split.externalTest) {
        metrics.externalTest = evaluateOnDataset(served, external);
        const leaky = new Set(split.externalTest.files.filter((f) => f.duplicateInTraining).map((f) => f.relPath));
        const leakFree = external.files.flatMap((f, i) => (leaky.has(f.relPath) ? [] : [i]));
        if (leakFree.length > 0) metrics.externalTestLeakFree = evaluateOnDataset(served, external, { indices: leakFree });
      }
      return Promise.resolve(metrics);
    },
  };
}

/** A separate test folder's images, with the patients its own patients file gives them. */
async function loadTestFolder(dir: string, manifest: ModelManifest, cacheDir: string | undefined): Promise<PreprocessedDataset> {
  const listed = await listLabeledImages(dir, manifest.task);
  const listing = { ...listed, files: (await withPatientsFile(listed.files, dir)).files };
  return loadPreprocessedDataset(listing, manifest.preprocessing, { cacheDir });
}
