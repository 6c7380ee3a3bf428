// Model-thread benchmark: how long a worker takes to run both shipped models on one image, with no
// I/O, three ways, image by image in turn so that the machine's drift touches all three alike:
//   in process     both models on the calling thread, one after the other (a worker without threads);
//   thread each    each model on a thread of its own, the two side by side (two pools of one thread);
//   pool           one pool of a thread per core holding both models, each image's forward passes
//                  split into pieces spread over it (WORKER_MODEL_THREADS=true).
// The images are the pipeline benchmark's: held-out Br35H scans as 256×256 JPEGs, half tumours, so
// that as many take the models' rotated copies as in service.
//
// Build first (npx tsc -b).  node bench/model-threads.js [--images 32] [--rounds 5]
// Writes bench/results/model-threads.json.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend, loadModel, readArtifactDir } from '@btd/model';
import { ModelThreadPool } from '@btd/inference-worker';
import { benchImages } from './lib/bench-images.js';
import { median } from './lib/stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUT = path.join(ROOT, 'bench/results/model-threads.json');
const { values: args } = parseArgs({ options: { images: { type: 'string', default: '32' }, rounds: { type: 'string', default: '5' } } });
const round1 = (x) => Math.round(x * 10) / 10;
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

const { images, from } = await benchImages(Number(args.images));
const files = { binary: await readArtifactDir(path.join(ROOT, 'models/tumor-binary')), type: await readArtifactDir(path.join(ROOT, 'models/tumor-type')) };
await initBackend({ prefer: 'wasm' });
const threads = os.availableParallelism();
const local = { binary: await loadModel(files.binary), type: await loadModel(files.type) };
const single = { binary: ModelThreadPool.start(1, 'wasm'), type: ModelThreadPool.start(1, 'wasm') };
const pool = ModelThreadPool.start(threads, 'wasm');
const setups = {
  'in process': { binary: local.binary, type: local.type, sideBySide: false },
  'thread each': { binary: await single.binary.load(files.binary), type: await single.type.load(files.type), sideBySide: true },
  pool: { binary: await pool.load(files.binary), type: await pool.load(files.type), sideBySide: true },
};

/** One image through both models as the worker runs them; a fresh buffer, as a worker downloads it. */
async function once({ binary, type, sideBySide }, bytes) {
  const image = Buffer.from(bytes);
  const started = performance.now();
  if (sideBySide) await Promise.all([binary.predict(image), type.predict(image, { heatmap: false })]);
  else {
    await binary.predict(image);
    await type.predict(image, { heatmap: false });
  }
  return performance.now() - started;
}

const times = Object.fromEntries(Object.keys(setups).map((name) => [name, images.map(() => [])]));
for (const setup of Object.values(setups)) for (const image of images.slice(0, 4)) await once(setup, image);
for (let r = 0; r < Number(args.rounds); r += 1) {
  for (const [i, image] of images.entries()) for (const [name, setup] of Object.entries(setups)) times[name][i].push(await once(setup, image));
}

// Per image, the median over rounds; then the median and mean over images.
const rows = Object.entries(times).map(([name, perImage]) => {
  const medians = perImage.map(median);
  return { setup: name, medianMs: round1(median(medians)), meanMs: round1(mean(medians)), p90Ms: round1([...medians].sort((a, b) => a - b)[Math.floor(0.9 * (medians.length - 1))]) };
});
const base = rows.find((row) => row.setup === 'thread each');
for (const row of rows) row.meanVsThreadEach = Math.round((row.meanMs / base.meanMs) * 100) / 100;
console.table(rows);

await writeFile(
  OUTPUT,
  `${JSON.stringify({ date: new Date().toISOString(), machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model.trim(), node: process.version }, loadAverage: os.loadavg(), images: { count: images.length, from }, rounds: Number(args.rounds), poolThreads: threads, rows }, null, 2)}\n`,
);
console.log(`wrote ${path.relative(ROOT, OUTPUT)}`);
await Promise.all([single.binary.close(), single.type.close(), pool.close()]);
