// Data-parallel training throughput: the real training loop (gradient worker threads, one wasm
// backend each, gradients averaged, Adam applied once per step) on the shipped architecture with
// 1 worker and with one per core, on synthetic 96×96 images; and the forward pass of the same
// images on the same workers, so that a step's cost is also given in forward passes.
// Build first: npx tsc -b packages/model. Writes bench/results/training-parallel.json.
//
//   node bench/training-parallel.js [--images 640] [--workers 1,2]
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend } from '../packages/model/dist/backend/index.js';
import { buildClassifier, DEFAULT_ARCHITECTURE } from '../packages/model/dist/model/architecture.js';
import { DEFAULT_AUGMENTATION } from '../packages/model/dist/train/augmentation.js';
import { GradientWorkerPool } from '../packages/model/dist/train/gradient-worker-pool.js';
import { adamFor, readWeights, runTrainingLoop } from '../packages/model/dist/train/training-loop.js';

const SIZE = 96;
const BATCH = 32;
const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'training-parallel.json');
const { values: args } = parseArgs({ options: { images: { type: 'string', default: '640' }, workers: { type: 'string', default: `1,${os.availableParallelism()}` } } });
const IMAGES = Number(args.images);
const WORKER_COUNTS = [...new Set(args.workers.split(',').map(Number))];

/** Smooth random blobs, so batch norm and augmentation see image-like statistics. */
function syntheticPixels(count) {
  const pixels = new Uint8Array(count * SIZE * SIZE);
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let n = 0; n < count; n++) {
    const cx = 20 + random() * 56;
    const cy = 20 + random() * 56;
    const r = 8 + random() * 20;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const d = Math.hypot(x - cx, y - cy);
        pixels[n * SIZE * SIZE + y * SIZE + x] = Math.max(0, Math.min(255, 200 * Math.exp(-((d / r) ** 2)) + 30 * random()));
      }
    }
  }
  return pixels;
}

async function measure(workers, pixels, labels) {
  const model = buildClassifier({ ...DEFAULT_ARCHITECTURE, inputSize: SIZE, numClasses: 2 });
  const shared = new SharedArrayBuffer(pixels.byteLength);
  new Uint8Array(shared).set(pixels);
  const pool = await GradientWorkerPool.start(workers, {
    type: 'init',
    topology: JSON.stringify(model.toJSON(null, false)),
    pixels: shared,
    labels,
    size: SIZE,
    numClasses: 2,
    classWeights: [1, 1],
    labelSmoothing: 0.05,
    l2: DEFAULT_ARCHITECTURE.l2,
    augmentation: DEFAULT_AUGMENTATION,
  });
  const optimizer = adamFor(model);
  const train = Array.from({ length: IMAGES }, (_, i) => i);
  try {
    // Two epochs; the first warms up (JIT, first-use allocations), the second is timed. No validation set.
    const state = await runTrainingLoop(
      model,
      optimizer,
      pool,
      { train, val: [], labels, numClasses: 2 },
      { epochs: 2, batchSize: BATCH, learningRate: 1e-3, patience: 10, warmupEpochs: 1, averageDecay: 0.995, seed: 1 },
      { epoch: 0, history: [], bestEpoch: 0, bestScore: [-1, -Infinity], bestWeights: readWeights(model) },
    );
    const seconds = state.history[1].seconds;
    const imagesPerSecond = IMAGES / seconds;
    // The forward pass (inference mode) of the same images in batches of the same size on the same
    // workers: a training step's cost in forward passes, on 1 core and on all of them.
    const weights = readWeights(model);
    const all = Int32Array.from(train);
    await pool.predict(weights, all, BATCH);
    const started = performance.now();
    await pool.predict(weights, all, BATCH);
    const forwardImagesPerSecond = IMAGES / ((performance.now() - started) / 1000);
    return {
      workers,
      images: IMAGES,
      seconds,
      imagesPerSecond: Math.round(imagesPerSecond * 10) / 10,
      forwardImagesPerSecond: Math.round(forwardImagesPerSecond * 10) / 10,
      stepToForward: Math.round((forwardImagesPerSecond / imagesPerSecond) * 100) / 100,
    };
  } finally {
    await pool.close();
    model.dispose();
  }
}

const backend = await initBackend({ prefer: 'wasm' });
const loadAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
const pixels = syntheticPixels(IMAGES);
const labels = Int32Array.from({ length: IMAGES }, (_, i) => i % 2);
const rows = [];
for (const workers of WORKER_COUNTS) {
  const row = await measure(workers, pixels, labels);
  rows.push(row);
  console.log(
    `${String(workers).padStart(2)} worker thread(s)  ${row.imagesPerSecond.toFixed(1).padStart(6)} images/s  (${IMAGES} images in ${row.seconds.toFixed(1)} s); forward ${row.forwardImagesPerSecond.toFixed(1)} images/s, step = ${row.stepToForward}× forward`,
  );
}
const one = rows.find((r) => r.workers === 1)?.imagesPerSecond;
const most = rows.at(-1);
const speedup = one && most.workers > 1 ? Math.round((most.imagesPerSecond / one) * 100) / 100 : null;
if (speedup !== null) console.log(`\n${most.workers} workers / 1 worker: ${speedup}× (target ≥ 1.7 on 2 cores) ${speedup >= 1.7 ? 'met' : 'NOT met'}`);
const result = { date: new Date().toISOString(), backend, node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAverage: { start: loadAtStart, end: os.loadavg() }, batch: BATCH, inputSize: SIZE, rows, speedup };
await mkdir(path.dirname(RESULTS), { recursive: true });
await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), RESULTS)}`);
