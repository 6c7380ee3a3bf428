// Training-kernel benchmark on the wasm backend (one core): per-kernel timings of the stock
// kernels against ours, and training throughput of a CNN shaped like the shipped one. The step-to-
// forward ratio is the median over forward passes and steps timed back to back, pair after pair.
//   node bench/training-kernels.js [kernel reps 5] [step reps 5] [pairs 7]
// Build first: npx tsc -b packages/model. Writes bench/results/training-kernels.json.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import {
  FAST_WASM_KERNELS,
  getStockWasmKernel,
  initBackend,
  registerFastWasmKernels,
  unregisterBatchNormGradient,
  unregisterBatchNormTraining,
  unregisterConvTraining,
  unregisterFastWasmKernels,
  unregisterReductionGradients,
  unregisterReluGradient,
} from '../packages/model/dist/backend/index.js';
import { median } from './lib/stats.js';

const BATCH = 32;
const SIZE = 96;
const KERNEL_REPS = Number(process.argv[2] ?? 5);
const STEP_REPS = Number(process.argv[3] ?? 5);
const PAIRS = Number(process.argv[4] ?? 7);
const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'training-kernels.json');

const round = (x, digits = 1) => (x === null ? null : Number(x.toFixed(digits)));

/** Median time of `run(inputs)`, each repetition on freshly made inputs (as in training). */
function timeKernel(config, makeInputs, attrs, reps) {
  const backend = tf.backend();
  const times = [];
  for (let i = 0; i < reps + 1; i++) {
    const inputs = makeInputs();
    const start = performance.now();
    const out = config.kernelFunc({ inputs, backend, attrs });
    const elapsed = performance.now() - start;
    backend.disposeData(out.dataId);
    tf.dispose(Object.values(inputs));
    if (i > 0) times.push(elapsed);
  }
  return median(times);
}

function kernelCases() {
  const convs = [[96, 1, 16], [96, 16, 16], [48, 16, 32], [48, 32, 32], [24, 32, 64], [24, 64, 64], [12, 64, 128], [12, 128, 128]];
  const cases = [];
  for (const [s, cin, cout] of convs) {
    const xShape = [BATCH, s, s, cin];
    const wShape = [3, 3, cin, cout];
    const dyShape = [BATCH, s, s, cout];
    const conv = { strides: 1, pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
    const label = `${s}x${s} ${cin}->${cout}`;
    cases.push({ kernel: 'Conv2D', label, attrs: { ...conv, dilations: 1 }, inputs: () => ({ x: tf.randomNormal(xShape), filter: tf.randomNormal(wShape) }) });
    cases.push({ kernel: tf.Conv2DBackpropFilter, label, attrs: { ...conv, filterShape: wShape }, inputs: () => ({ x: tf.randomNormal(xShape), dy: tf.randomNormal(dyShape) }) });
    if (cin > 1) {
      cases.push({ kernel: tf.Conv2DBackpropInput, label, attrs: { ...conv, inputShape: xShape }, inputs: () => ({ dy: tf.randomNormal(dyShape), filter: tf.randomNormal(wShape) }) });
    }
    const bn = [1, 1, 1, cout];
    cases.push({ kernel: tf.Tile, label: `[1,1,1,${cout}] to ${s}x${s}`, attrs: { reps: [BATCH, s, s, 1] }, inputs: () => ({ x: tf.randomNormal(bn) }) });
  }
  for (const [s, c] of [[96, 16], [48, 32], [24, 64], [12, 128]]) {
    cases.push({ kernel: tf.Identity, label: `${s}x${s}x${c}`, attrs: {}, inputs: () => ({ x: tf.randomNormal([BATCH, s, s, c]) }) });
    cases.push({
      kernel: tf.FusedBatchNorm,
      label: `${s}x${s}x${c}`,
      attrs: { varianceEpsilon: 1e-3 },
      inputs: () => ({
        x: tf.randomNormal([BATCH, s, s, c]),
        mean: tf.randomNormal([c]),
        variance: tf.randomUniform([c], 0.5, 2),
        offset: tf.randomNormal([c]),
        scale: tf.randomNormal([c]),
      }),
    });
    cases.push({
      kernel: tf.MaxPoolGrad,
      label: `2x2/2 ${s}x${s}x${c}`,
      attrs: { filterSize: 2, strides: 2, pad: 'valid' },
      inputs: () => {
        const input = tf.randomNormal([BATCH, s, s, c]);
        const output = tf.maxPool(input, 2, 2, 'valid');
        return { input, output, dy: tf.randomNormal(output.shape) };
      },
    });
  }
  // Tile cases repeat per conv; keep one per shape.
  return cases.filter((c, i) => cases.findIndex((d) => d.kernel === c.kernel && d.label === c.label) === i);
}

function measureKernels() {
  return kernelCases().map((c) => {
    const ours = FAST_WASM_KERNELS.includes(c.kernel) ? tf.getKernel(c.kernel, 'wasm') : undefined;
    const stock = getStockWasmKernel(c.kernel);
    const stockMs = stock ? timeKernel(stock, c.inputs, c.attrs, KERNEL_REPS) : null;
    const oursMs = ours ? timeKernel(ours, c.inputs, c.attrs, KERNEL_REPS) : null;
    const row = { kernel: c.kernel, shape: c.label, stockMs: round(stockMs), oursMs: round(oursMs) };
    row.speedup = stockMs !== null && oursMs !== null ? round(stockMs / oursMs, 2) : null;
    if (!stock) row.stockNote = 'not registered for wasm';
    console.log(`${row.kernel.padEnd(22)} ${row.shape.padEnd(22)} stock ${String(row.stockMs ?? 'n/a').padStart(7)} ms  ours ${String(row.oursMs ?? '-').padStart(7)} ms`);
    return row;
  });
}

/** The shipped architecture in small: 4 blocks of two 3x3 conv + BN + ReLU, max-pool, GAP, dropout, softmax. */
function buildModel() {
  const model = tf.sequential();
  [16, 32, 64, 128].forEach((filters, block) => {
    for (let j = 0; j < 2; j++) {
      const first = block === 0 && j === 0 ? { inputShape: [SIZE, SIZE, 1] } : {};
      model.add(tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, ...first }));
      model.add(tf.layers.batchNormalization());
      model.add(tf.layers.activation({ activation: 'relu' }));
    }
    model.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  });
  model.add(tf.layers.globalAveragePooling2d({}));
  model.add(tf.layers.dropout({ rate: 0.3 }));
  model.add(tf.layers.dense({ units: 2, activation: 'softmax' }));
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  return model;
}

async function timeSteps(model, x, y, reps) {
  await model.trainOnBatch(x, y);
  const times = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await model.trainOnBatch(x, y);
    times.push(performance.now() - start);
  }
  return median(times);
}

function timeForward(model, x, reps, training) {
  const times = [];
  for (let i = 0; i < reps + 1; i++) {
    const start = performance.now();
    tf.tidy(() => (training ? model.apply(x, { training: true }) : model.predict(x)).dataSync());
    if (i > 0) times.push(performance.now() - start);
  }
  return median(times);
}

/**
 * Step-to-forward ratios of forward passes and training steps (medians of 3 each) timed back to
 * back, pair after pair, so that the machine's drift moves both sides of each ratio alike.
 */
async function pairedRatios(model, x, y, pairs) {
  const ratios = [];
  for (let i = 0; i < pairs; i++) {
    const forwardMs = timeForward(model, x, 3, false);
    const stepMs = await timeSteps(model, x, y, 3);
    ratios.push(stepMs / forwardMs);
  }
  return ratios;
}

/**
 * Training step with a given set of our kernels (and optionally our batch-norm gradient, and
 * the fused batch normalisation and ReLU gradient) in place, the stock ones otherwise; null
 * with the error when the step cannot run.
 */
async function measureTraining({ label, ourKernels, batchNormGradient, fusedTraining }, model, x, y) {
  registerFastWasmKernels();
  unregisterFastWasmKernels(FAST_WASM_KERNELS.filter((k) => !ourKernels.includes(k)));
  if (!batchNormGradient) {
    unregisterBatchNormGradient();
    unregisterReductionGradients();
  }
  if (!fusedTraining) {
    unregisterReluGradient();
    unregisterBatchNormTraining();
    unregisterConvTraining();
  }
  const base = { label, ourKernels, batchNormGradient, fusedTraining };
  try {
    const stepMs = await timeSteps(model, x, y, STEP_REPS);
    console.log(`${label.padEnd(52)} step ${stepMs.toFixed(0).padStart(6)} ms, ${(BATCH / (stepMs / 1000)).toFixed(1)} images/s`);
    return { ...base, stepMs: round(stepMs, 0), imagesPerSecond: round(BATCH / (stepMs / 1000)) };
  } catch (error) {
    console.log(`${label.padEnd(52)} cannot run: ${error.message}`);
    return { ...base, stepMs: null, imagesPerSecond: null, error: error.message };
  } finally {
    registerFastWasmKernels();
  }
}

const BEFORE_FUSION = FAST_WASM_KERNELS.filter((k) => k !== tf.Cast);
const TRAINING_VARIANTS = [
  { label: 'stock kernels only', ourKernels: [], batchNormGradient: false, fusedTraining: false },
  { label: 'stock + our Conv2DBackpropFilter', ourKernels: [tf.Conv2DBackpropFilter], batchNormGradient: false, fusedTraining: false },
  { label: 'stock + our two conv gradients', ourKernels: [tf.Conv2DBackpropFilter, tf.Conv2DBackpropInput], batchNormGradient: false, fusedTraining: false },
  { label: 'our kernels, BN, Sum, Mean gradients (no fusion)', ourKernels: BEFORE_FUSION, batchNormGradient: true, fusedTraining: false },
  { label: 'all ours: + fused BN, ReLU gradient, plain conv', ourKernels: [...FAST_WASM_KERNELS], batchNormGradient: true, fusedTraining: true },
];

async function main() {
  const backend = await initBackend({ prefer: 'wasm' });
  const loadBefore = os.loadavg();
  console.log(`backend ${JSON.stringify(backend)}, node ${process.version}, ${os.cpus()[0].model}, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  const kernels = measureKernels();

  const model = buildModel();
  const x = tf.randomNormal([BATCH, SIZE, SIZE, 1]);
  const y = tf.oneHot(tf.randomUniform([BATCH], 0, 2, 'int32'), 2).toFloat();
  const forwardMs = timeForward(model, x, STEP_REPS, false);
  const forwardTrainingMs = timeForward(model, x, STEP_REPS, true);
  unregisterFastWasmKernels();
  const forwardStockMs = timeForward(model, x, STEP_REPS, false);
  registerFastWasmKernels();
  console.log(`forward pass (predict) ${forwardMs.toFixed(0)} ms (stock kernels: ${forwardStockMs.toFixed(0)} ms); forward in training mode ${forwardTrainingMs.toFixed(0)} ms`);
  const training = [];
  for (const variant of TRAINING_VARIANTS) training.push(await measureTraining(variant, model, x, y));
  const ours = training[training.length - 1];
  const separateRatio = ours.stepMs === null ? null : round(ours.stepMs / forwardMs, 2);
  // The verdict: the median over pairs timed back to back (the separate medians above lie minutes apart).
  const paired = ours.stepMs === null ? [] : await pairedRatios(model, x, y, PAIRS);
  const ratio = paired.length === 0 ? null : round(median(paired), 2);
  console.log(`training step / forward pass, separate medians: ${separateRatio}`);
  console.log(`training step / forward pass, median of ${paired.length} back-to-back pairs: ${ratio} (range ${paired.length ? `${round(Math.min(...paired), 2)}–${round(Math.max(...paired), 2)}` : 'n/a'}; target <= 4)`);

  const result = {
    date: new Date().toISOString(),
    backend,
    node: process.version,
    cpu: os.cpus()[0].model,
    cores: os.cpus().length,
    loadAverage: { before: loadBefore.map((l) => round(l, 2)), after: os.loadavg().map((l) => round(l, 2)) },
    batch: BATCH,
    input: [SIZE, SIZE, 1],
    repetitions: { kernels: KERNEL_REPS, steps: STEP_REPS, pairs: PAIRS, statistic: 'median' },
    kernels,
    model: { forwardMs: round(forwardMs, 0), forwardStockKernelsMs: round(forwardStockMs, 0), forwardTrainingModeMs: round(forwardTrainingMs, 0), training, stepToForwardRatio: ratio, stepToForwardRatioSeparate: separateRatio, pairedRatios: paired.map((r) => round(r, 2)) },
    wasmHeapMB: round(tf.backend().wasm.HEAPU8.length / 2 ** 20, 0),
  };
  await mkdir(path.dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), RESULTS)}`);
  tf.dispose([x, y]);
  model.dispose();
}

await main();
