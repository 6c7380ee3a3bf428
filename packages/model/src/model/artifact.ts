import * as tf from '@tensorflow/tfjs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ARTIFACT_FILES, assertManifest, type ModelManifest } from './manifest.js';

/** An artifact held in memory: file name → bytes (as read from a directory or an object store). */
export type ArtifactFiles = Record<string, Uint8Array>;

/** Reads every regular file of an artifact directory. */
export async function readArtifactDir(dir: string): Promise<ArtifactFiles> {
  const files: ArtifactFiles = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) files[entry.name] = new Uint8Array(await readFile(path.join(dir, entry.name)));
  }
  return files;
}

/** Writes a model's topology and weights (model.json + weights.bin) into dir. */
export async function saveModelWeights(
  model: tf.LayersModel,
  dir: string,
  names: { topology: string; weights: string } = { topology: ARTIFACT_FILES.topology, weights: ARTIFACT_FILES.weights },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData as ArrayBuffer;
      const modelJson = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [names.weights], weights: artifacts.weightSpecs }],
      };
      await writeFile(path.join(dir, names.topology), JSON.stringify(modelJson));
      await writeFile(path.join(dir, names.weights), new Uint8Array(weightData));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

export async function writeManifest(dir: string, manifest: ModelManifest): Promise<void> {
  await writeFile(path.join(dir, ARTIFACT_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Writes the manifest and, beside it, its metrics alone (`metrics.json`), as trained artifacts hold them. */
export async function writeManifestAndMetrics(dir: string, manifest: ModelManifest): Promise<void> {
  await writeManifest(dir, manifest);
  await writeFile(path.join(dir, ARTIFACT_FILES.metrics), `${JSON.stringify(manifest.metrics, null, 2)}\n`);
}

function requireFile(files: ArtifactFiles, name: string): Uint8Array {
  const bytes = files[name];
  if (!bytes) throw new Error(`model artifact has no ${name}`);
  return bytes;
}

/** A JSON file of the artifact, parsed; a file that is not JSON (cut short, say) is refused naming it. */
function parseJsonFile(files: ArtifactFiles, name: string): unknown {
  const text = new TextDecoder().decode(requireFile(files, name));
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`model artifact's ${name} is not valid JSON (${(error as Error).message}); the file may be cut short`, { cause: error });
  }
}

export function parseManifest(files: ArtifactFiles): ModelManifest {
  return assertManifest(parseJsonFile(files, ARTIFACT_FILES.manifest));
}

/** A topology file's network and weight list, refused naming the file when either is missing. */
function readTopology(files: ArtifactFiles, topologyFile: string): { modelTopology: object; specs: tf.io.WeightsManifestEntry[]; paths: string[] } {
  const modelJson = parseJsonFile(files, topologyFile) as { modelTopology?: unknown; weightsManifest?: unknown } | null;
  const groups = modelJson?.weightsManifest as { paths?: unknown; weights?: unknown }[] | undefined;
  if (!modelJson || typeof modelJson.modelTopology !== 'object' || modelJson.modelTopology === null) throw new Error(`${topologyFile}: no modelTopology`);
  if (!Array.isArray(groups) || !groups.every((group) => Array.isArray(group?.paths) && Array.isArray(group.weights))) {
    throw new Error(`${topologyFile}: no weightsManifest listing the weight files and weights`);
  }
  const specs = groups.flatMap((group) => group.weights as tf.io.WeightsManifestEntry[]);
  for (const spec of specs) {
    // The byte count below and the weights this package writes are 32-bit floats, unquantised.
    if (spec.dtype !== 'float32' || spec.quantization || !Array.isArray(spec.shape)) {
      throw new Error(`${topologyFile}: weight ${String(spec.name)} is ${spec.quantization ? 'quantised' : String(spec.dtype)}; this build reads float32 weights`);
    }
  }
  return { modelTopology: modelJson.modelTopology, specs, paths: groups.flatMap((group) => group.paths as string[]) };
}

/**
 * Builds the Keras-style model from in-memory artifact files, checking weights against the topology.
 * A refusal leaves no tensors behind: TensorFlow.js's own loader keeps the network it built, and
 * the weights it decoded, when the weights do not fit it (a name, shape or type that differs).
 */
export async function modelFromArtifact(files: ArtifactFiles, topologyFile: string = ARTIFACT_FILES.topology): Promise<tf.LayersModel> {
  const { modelTopology, specs, paths } = readTopology(files, topologyFile);
  const buffers = paths.map((p) => requireFile(files, p));
  const total = buffers.reduce((n, b) => n + b.byteLength, 0);
  const expected = specs.reduce((n, s) => n + s.shape.reduce((a, d) => a * d, 1) * 4, 0);
  if (total !== expected) throw new Error(`weights are ${total} bytes, topology needs ${expected}`);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  const model = await tf.models.modelFromJSON({ modelTopology } as Parameters<typeof tf.models.modelFromJSON>[0]);
  const weights = tf.io.decodeWeights(weightData.buffer, specs);
  try {
    model.loadWeights(weights, true);
    return model;
  } catch (error) {
    model.dispose();
    throw new Error(`${topologyFile}: its weights do not fit its network: ${(error as Error).message}`, { cause: error });
  } finally {
    tf.dispose(weights);
  }
}
