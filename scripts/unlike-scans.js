#!/usr/bin/env node
// Measures the models' check that refuses images unlike their training scans on images that are
// not brain MRI slices: synthetic ones made here (noise, smooth noise, gradients, checkerboards,
// discs, pages of text, head-like drawings) and, with --images DIR, every JPEG and PNG below DIR
// (photos, screenshots, diagrams, icons). Prints, per model and kind, how many the check refuses
// and the distances against the model's limit. How many real scans it refuses comes from
// `btd eval --json` (its `typicality` field). Build first (`npm run build`).
//
//   node scripts/unlike-scans.js [--images DIR]... [--json FILE] MODEL_DIR...
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { ImageDecodeError, initBackend, loadModel } from '@btd/model';

const args = process.argv.slice(2);
const imageDirs = [];
const modelDirs = [];
let jsonFile;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--images') imageDirs.push(args[++i]);
  else if (args[i] === '--json') jsonFile = args[++i];
  else modelDirs.push(args[i]);
}
if (modelDirs.length === 0 || imageDirs.includes(undefined)) {
  console.error('usage: node scripts/unlike-scans.js [--images DIR]... [--json FILE] MODEL_DIR...');
  process.exit(2);
}

let state = 1;
const uniform = () => (state = (state * 16807) % 2147483647) / 2147483647;
const fromRaw = (pixels, width, height) => sharp(Buffer.from(pixels), { raw: { width, height, channels: 1 } });
const drawn = (side, shade) => fromRaw(Array.from({ length: side * side }, (_, i) => shade(i % side, Math.floor(i / side))), side, side).png().toBuffer();
const svg = (markup) => sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300">${markup}</svg>`)).png().toBuffer();

/** Five of each synthetic kind, each a little different. */
async function syntheticImages() {
  const made = [];
  for (let k = 0; k < 5; k++) {
    made.push(['uniform noise', await drawn(256, () => uniform() * 255)]);
    made.push(['smooth noise', await fromRaw(Array.from({ length: 256 * 256 }, () => uniform() * 255), 256, 256).blur(2 + 3 * k).normalise().png().toBuffer()]);
    made.push(['gradient', await drawn(256, (x, y) => (x * (k + 1) + y) % 256)]);
    made.push(['checkerboard', await drawn(256, (x, y) => ((Math.floor(x / (8 << k)) + Math.floor(y / (8 << k))) % 2) * 255)]);
    made.push(['disc', await drawn(256, (x, y) => ((x - 128) ** 2 + (y - 128) ** 2 < (40 + 15 * k) ** 2 ? 200 : 10))]);
    made.push(['page of text', await svg(`<rect width="300" height="300" fill="white"/><text x="10" y="${60 + k * 20}" font-size="${20 + k * 6}">Report ${k}</text><text x="10" y="200" font-size="14">findings and impression</text>`)]);
    made.push([
      'head-like drawing',
      await svg(`<rect width="300" height="300"/><ellipse cx="150" cy="150" rx="${100 + k * 5}" ry="125" fill="rgb(${100 + k * 20},${100 + k * 20},${100 + k * 20})"/><circle cx="${110 + k * 10}" cy="130" r="${10 + 4 * k}" fill="white"/>`),
    ]);
  }
  return made;
}

async function* picturesBelow(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* picturesBelow(file);
    else if (/\.(jpe?g|png)$/i.test(entry.name)) yield file;
  }
}

const images = await syntheticImages();
for (const dir of imageDirs) for await (const file of picturesBelow(dir)) images.push([`pictures in ${dir}`, await readFile(file), path.relative(dir, file)]);

await initBackend();
const rows = [];
/** Per image, whether some model refused it: the worker runs every model on an image and fails it when one refuses. */
const refusedByAny = images.map(() => false);
for (const modelDir of modelDirs) {
  const model = await loadModel(modelDir);
  if (!model.manifest.typicality) {
    console.error(`${modelDir}: no typicality limit (run btd typicality first)`);
    process.exit(1);
  }
  const byKind = new Map();
  for (const [index, [kind, bytes]] of images.entries()) {
    const row = byKind.get(kind) ?? { model: model.manifest.name, version: model.manifest.version, kind, images: 0, refusedOtherwise: 0, measured: 0, refused: 0, distances: [] };
    byKind.set(kind, row);
    row.images++;
    try {
      const { typicality } = await model.predict(new Uint8Array(bytes), { heatmap: false, refuseAtypical: false });
      row.measured++;
      row.distances.push(typicality.distance);
      if (typicality.distance > typicality.limit) {
        row.refused++;
        refusedByAny[index] = true;
      }
    } catch (error) {
      if (!(error instanceof ImageDecodeError)) throw error;
      row.refusedOtherwise++; // blank, too small or undecodable: refused before the network runs
    }
  }
  model.dispose();
  for (const row of byKind.values()) rows.push({ ...row, limit: model.manifest.typicality.limit, distances: row.distances.sort((a, b) => a - b) });
}

const median = (sorted) => (sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN);
console.log('| model | images | refused before the network | measured | refused as unlike scans | median distance | lowest | limit |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.model} | ${r.kind} (${r.images}) | ${r.refusedOtherwise} | ${r.measured} | **${r.refused}** | ${median(r.distances).toFixed(1)} | ${(r.distances[0] ?? NaN).toFixed(1)} | ${r.limit.toFixed(1)} |`);
}
if (modelDirs.length > 1) {
  console.log('\n| images | refused by one of the models or more, as the worker refuses them |\n|---|---|');
  for (const kind of new Set(images.map(([k]) => k))) {
    const of = images.flatMap(([k], i) => (k === kind ? [refusedByAny[i]] : []));
    console.log(`| ${kind} (${of.length}) | **${of.filter(Boolean).length}** |`);
  }
}
if (jsonFile) await writeFile(jsonFile, `${JSON.stringify({ measuredAt: new Date().toISOString(), rows, refusedByAny: images.map(([kind, , file], i) => ({ kind, ...(file ? { file } : {}), refused: refusedByAny[i] })) }, null, 2)}\n`);
