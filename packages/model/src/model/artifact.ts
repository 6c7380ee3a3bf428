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

export function parseManifest(files: ArtifactFiles): ModelManifest {
  return assertManifest(JSON.parse(new TextDecoder().decode(requireFile(files, ARTIFACT_FILES.manifest))));
}

/** Builds the Keras-style model from in-memory artifact files, checking weights against the topology. */
export async function modelFromArtifact(files: ArtifactFiles, topologyFile: string = ARTIFACT_FILES.topology): Promise<tf.LayersModel> {
  const modelJson = JSON.parse(new TextDecoder().decode(requireFile(files, topologyFile))) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const buffers = modelJson.weightsManifest.flatMap((group) => group.paths.map((p) => requireFile(files, p)));
  const total = buffers.reduce((n, b) => n + b.byteLength, 0);
  const expected = specs.reduce((n, s) => n + s.shape.reduce((a, d) => a * d, 1) * 4, 0);
  if (total !== expected) throw new Error(`weights are ${total} bytes, topology needs ${expected}`);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  return tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: specs, weightData: weightData.buffer }),
  );
}
