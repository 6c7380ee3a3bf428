// Robustness benchmark: how far the shipped tumor-binary model's answers move when a scan is
// rendered or exported differently (another window or gamma, heavy JPEG compression, a low-resolution
// export, burned-in annotations, a 12-bit PNG export), on the scans of its test split, which it never
// trained on, and how many of each rendering it would refuse as unlike its training scans (it is
// asked to answer them all). Build first (npx tsc -b packages/model).
// Usage: node bench/robustness.js [imageCount=120] [modelDir]. Writes bench/results/robustness.json.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { initBackend, loadModel } from '../packages/model/dist/index.js';
import { median } from './lib/stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const count = Number(process.argv[2] ?? 120);
const modelDir = process.argv[3] ?? path.join(repo, 'models/tumor-binary');
const datasets = process.env.BTD_DATASETS_DIR ?? path.resolve(repo, '../shared/datasets');

const round = (x, d = 3) => Number(x.toFixed(d));
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/** White text in three corners, as viewers burn in patient, sequence and scale annotations. */
function annotations(width, height) {
  const size = Math.max(10, Math.round(height / 24));
  const text = (x, y, s) => `<text x="${x}" y="${y}" class="t">${s}</text>`;
  return Buffer.from(
    `<svg width="${width}" height="${height}"><style>.t{fill:white;font:${size}px sans-serif}</style>` +
      text(3, size, 'ID 4711 SE 3 IM 12') + text(3, height - 4, 'TR 4000 TE 90') + text(Math.round(width * 0.65), height - 4, '10 mm') + '</svg>',
  );
}

/** Each variant turns the original bytes into another rendering of the same slice. */
const variants = {
  'gamma 0.67 (brighter mid-tones)': (s) => s.toColourspace('b-w').gamma(1, 1.5).png(),
  'gamma 1.5 (darker mid-tones)': (s) => s.toColourspace('b-w').gamma(1.5, 1).png(),
  'narrow window (contrast ×1.3)': (s) => s.toColourspace('b-w').linear(1.3, -0.15 * 255).png(),
  'wide window (contrast ×0.75)': (s) => s.toColourspace('b-w').linear(0.75, 0).png(),
  'JPEG quality 30': (s) => s.jpeg({ quality: 30 }),
  'exported at 128 pixels': (s) => s.resize(128, 128, { fit: 'inside' }).png(),
  'burned-in annotations': async (s, meta) => s.composite([{ input: annotations(meta.width, meta.height) }]).png(),
  '12-bit PNG export': async (s) => {
    const { data, info } = await s.toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    return sharp(Uint16Array.from(data, (v) => v * 16), { raw: { width: info.width, height: info.height, channels: 1 } }).toColourspace('grey16').png();
  },
};

const backend = await initBackend();
const model = await loadModel(modelDir);
const held = JSON.parse(await readFile(path.join(modelDir, 'split.json'), 'utf8')).assignments.filter((a) => a.split === 'test');
const picked = Array.from({ length: Math.min(count, held.length) }, (_, i) => held[Math.floor((i * held.length) / Math.min(count, held.length))]);
const tumour = (p) => p.probabilities.tumor >= 0.5;

const stats = Object.fromEntries(Object.keys(variants).map((name) => [name, { flips: 0, wrong: 0, refused: 0, shifts: [] }]));
let wrong = 0;
let refused = 0;
/** Every rendering gets an answer; those beyond the model's typicality limit are counted as it would refuse them when served. */
const answer = async (bytes) => model.predict(bytes, { heatmap: false, refuseAtypical: false });
const beyondLimit = (p) => p.typicality !== undefined && p.typicality.distance > p.typicality.limit;
for (const { relPath, label } of picked) {
  const bytes = await readFile(path.join(datasets, 'br35h', relPath));
  const meta = await sharp(bytes).metadata();
  const base = await answer(bytes);
  const truth = label === 'tumor';
  if (tumour(base) !== truth) wrong++;
  if (beyondLimit(base)) refused++;
  for (const [name, render] of Object.entries(variants)) {
    const other = await answer(await (await render(sharp(bytes), meta)).toBuffer());
    const s = stats[name];
    if (beyondLimit(other)) s.refused++;
    if (tumour(other) !== tumour(base)) s.flips++;
    if (tumour(other) !== truth) s.wrong++;
    s.shifts.push(Math.abs(other.probabilities.tumor - base.probabilities.tumor));
  }
}
model.dispose();

const rows = [
  { rendering: 'as stored', accuracy: round(1 - wrong / picked.length), answersChanged: 0, medianShift: 0, p90Shift: 0, maxShift: 0, refused },
  ...Object.entries(stats).map(([name, s]) => ({
    rendering: name,
    accuracy: round(1 - s.wrong / picked.length),
    answersChanged: s.flips,
    medianShift: round(median(s.shifts)),
    p90Shift: round(quantile(s.shifts, 0.9)),
    maxShift: round(Math.max(...s.shifts)),
    refused: s.refused,
  })),
];
console.table(rows);
const result = {
  date: new Date().toISOString(),
  backend,
  node: process.version,
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  model: `${model.manifest.name}@${model.manifest.version}`,
  images: picked.length,
  from: 'br35h, the model test split, spread evenly',
  shift: 'absolute change of the tumour probability against the stored image',
  refused: 'renderings beyond the model\'s typicality limit, which it refuses when served (here it answers them all)',
  rows,
};
await mkdir(path.join(here, 'results'), { recursive: true });
await writeFile(path.join(here, 'results', 'robustness.json'), `${JSON.stringify(result, null, 2)}\n`);
