import type { ArtifactFiles } from './artifact-files.js';
import { ArtifactVerificationError, ModelRuntimeUnavailableError } from './registry.errors.js';

/** What the verifier needs of a loaded model; `LoadedModel` of `@btd/model` satisfies it. */
export interface VerifiableModel {
  readonly manifest: {
    task: string;
    classes: string[];
    inputSize: number;
    expectedOutput?: { image: string; probabilities: Record<string, number> };
  };
  predict(image: Uint8Array, options?: { refuseAtypical?: boolean }): Promise<{ probabilities: Record<string, number> }>;
  dispose(): void;
}

/** Options of {@link verifyArtifact}. */
export interface VerifyArtifactOptions<M extends VerifiableModel> {
  task: string;
  /** Registry version, for messages. */
  version: string;
  /** Loads the artifact, e.g. `loadModel` of `@btd/model`, which refuses weights or an input shape that disagree with the topology and manifest. */
  load: (files: ArtifactFiles) => Promise<M>;
  /** Largest accepted difference per class probability (default 0.01: backends differ in rounding). */
  tolerance?: number;
  /**
   * Awaited between loading and the probe prediction. Both hold the event loop; a server can use
   * it to let work that queued up during the load run first.
   */
  beforeProbe?: () => Promise<void>;
}

function compareProbe(model: VerifiableModel, actual: Record<string, number>, tolerance: number): string | null {
  const expected = model.manifest.expectedOutput?.probabilities ?? {};
  for (const name of model.manifest.classes) {
    const want = expected[name];
    const got = actual[name];
    if (want === undefined || got === undefined) return `probe output lacks class ${name}`;
    if (!(Math.abs(want - got) <= tolerance)) {
      return `probe image gives ${name}=${got.toFixed(4)}, manifest expects ${want.toFixed(4)}`;
    }
  }
  return null;
}

async function checkModel(model: VerifiableModel, files: ArtifactFiles, options: VerifyArtifactOptions<VerifiableModel>): Promise<string | null> {
  const { task } = options;
  const { manifest } = model;
  if (manifest.task !== task) return `artifact is a ${manifest.task} model`;
  const probe = manifest.expectedOutput;
  if (!probe) return 'manifest has no expectedOutput to check the model against';
  const image = files[probe.image];
  if (!image) return `probe image ${probe.image} is missing from the artifact`;
  await options.beforeProbe?.();
  // The probe is synthetic, unlike any scan: a model that refuses such images must still answer it.
  const prediction = await model.predict(image, { refuseAtypical: false });
  return compareProbe(model, prediction.probabilities, options.tolerance ?? 0.01);
}

/**
 * Loads an artifact and checks that it behaves as its manifest promises: it loads (the loader checks
 * weights and input shape), it is a model of the task, and its probe image gives the recorded
 * probabilities. Returns the loaded
 * model (the caller owns it) or throws {@link ArtifactVerificationError}, disposing what it loaded.
 */
export async function verifyArtifact<M extends VerifiableModel>(files: ArtifactFiles, options: VerifyArtifactOptions<M>): Promise<M> {
  const { task, version } = options;
  let model: M;
  try {
    model = await options.load(files);
  } catch (error) {
    if (error instanceof ModelRuntimeUnavailableError) throw error;
    throw new ArtifactVerificationError(task, version, `does not load: ${(error as Error).message}`, { cause: error });
  }
  let problem: string | null;
  try {
    problem = await checkModel(model, files, options as VerifyArtifactOptions<VerifiableModel>);
  } catch (error) {
    if (error instanceof ModelRuntimeUnavailableError) {
      model.dispose();
      throw error;
    }
    problem = `probe prediction failed: ${(error as Error).message}`;
  }
  if (problem === null) return model;
  model.dispose();
  throw new ArtifactVerificationError(task, version, problem);
}
