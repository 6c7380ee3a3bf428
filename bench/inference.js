// Inference benchmark: images/s at batch 1 and 16, and per-image latency of preprocessing, model and
// heatmap, for the shipped models on this machine's backend. Build first (npx tsc -b packages/model).
// Usage: node bench/inference.js [imageCount=64] [modelDir...]. Writes bench/results/inference.json.
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadModel, preprocessImage } from '../packages/model/dist/index.js';
import { median } from './lib/stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const count = Number(process.argv[2] ?? 64);
const modelDirs = process.argv.length > 3 ? process.argv.slice(3) : ['models/tumor-binary', 'models/tumor-type'].map((d) => path.join(repo, d));
const datasets = process.env.BTD_DATASETS_DIR ?? path.resolve(repo, '../shared/datasets');

const round = (x, d = 2) => Number(x.toFixed(d));

async function sampleImages() {
  const out = [];
  for (const folder of ['br35h/yes', 'br35h/no']) {
    const dir = path.join(datasets, folder);
    const names = (await readdir(dir)).sort().slice(0, Math.ceil(count / 2));
    for (const name of names) out.push(await readFile(path.join(dir, name)));
  }
  return out.slice(0, count);
}

async function benchModel(dir, images) {
  const model = await loadModel(dir);
  const m = model.manifest;
  const pre = [];
  const inputs = [];
  for (const image of images) {
    const t = performance.now();
    inputs.push(await preprocessImage(image, m.preprocessing));
    pre.push(performance.now() - t);
  }
  const area = m.inputSize * m.inputSize;
  const forward = model.forwardPass;
  const camClass = m.heatmapClass ? m.classes.indexOf(m.heatmapClass) : -1;
  forward.run(inputs[0].pixels, 1, camClass);
  const single = inputs.map((input) => {
    const t = performance.now();
    forward.run(input.pixels, 1, camClass);
    return performance.now() - t;
  });
  const batches = [];
  for (let start = 0; start + 16 <= inputs.length; start += 16) {
    const pixels = new Uint8Array(16 * area);
    for (let i = 0; i < 16; i++) pixels.set(inputs[start + i].pixels, i * area);
    const t = performance.now();
    forward.run(pixels, 16, camClass);
    batches.push(performance.now() - t);
  }
  const heat = [];
  const whole = [];
  for (const image of images) {
    // A fresh buffer each time: predict reuses the preprocessing of a buffer it has seen.
    const p = await model.predict(Buffer.from(image), { heatmap: true });
    heat.push(p.timings.heatmapMs);
    whole.push(p.timings.preprocessMs + p.timings.modelMs + p.timings.heatmapMs);
  }
  const tensorsBefore = tf.memory().numTensors;
  for (const image of images) await model.predict(Buffer.from(image));
  const row = {
    model: `${m.name}@${m.version}`,
    inputSize: m.inputSize,
    testTimeFlip: m.testTimeFlip,
    // Rotated copies (only below the bound, when one is set): the mean shows what they cost.
    testTimeRotations: m.testTimeRotations ? `${m.testTimeRotations.join('/')}${m.testTimeRotationsBelow ? ` below ${m.testTimeRotationsBelow}` : ''}` : '',
    preprocessMsMedian: round(median(pre)),
    modelMsMedianBatch1: round(median(single)),
    modelMsMeanBatch1: round(single.reduce((a, b) => a + b, 0) / single.length),
    heatmapMsMedian: round(median(heat)),
    predictMsMedian: round(median(whole)),
    imagesPerSecondBatch1: round(1000 / median(single), 1),
    imagesPerSecondBatch16: batches.length ? round((16 * 1000) / median(batches), 1) : null,
    endToEndImagesPerSecond: round(1000 / median(whole), 1),
    tensorGrowth: tf.memory().numTensors - tensorsBefore,
  };
  model.dispose();
  return row;
}

const backend = await initBackend();
const images = await sampleImages();
const rows = [];
for (const dir of modelDirs) rows.push(await benchModel(dir, images));
console.table(rows);
const result = { date: new Date().toISOString(), backend, node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAverage: os.loadavg(), images: images.length, statistic: 'median', rows };
await mkdir(path.join(here, 'results'), { recursive: true });
await writeFile(path.join(here, 'results', 'inference.json'), `${JSON.stringify(result, null, 2)}\n`);
