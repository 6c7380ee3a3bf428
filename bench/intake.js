// Intake benchmark: what proving a batch of uploads whole costs the API, with DICOM frames decoded
// on its event loop (INTAKE_DECODE_THREADS=0) and on a pool of threads (the default). A STOW-RS request
// or a study form of --images 512×512 12-bit MR slices (Br35H held-out scans, as bench/pipeline.js
// makes them), uncompressed and as lossless JPEG 2000 (GDCM's gdcmconv), is inspected as the API
// inspects it: every file side by side; so are the same scans as 256×256 JPEGs, which libvips decodes
// on its own threads whatever INTAKE_DECODE_THREADS says. Reported: the time to inspect the batch, and
// the longest the event loop was held meanwhile (every other request to the API waits that long).
// Build first (npx tsc -b). Usage: node bench/intake.js [--images 32] [--rounds 5]. Writes bench/results/intake.json.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { inlineDicomReader, pooledDicomReader } from '../services/api/dist/intake/dicom-reader.js';
import { inspectUpload } from '../services/api/dist/intake/inspect-upload.js';
import { benchImages } from './lib/bench-images.js';
import { median } from './lib/stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({ options: { images: { type: 'string', default: '32' }, rounds: { type: 'string', default: '5' } } });
const COUNT = Number(args.images);
const ROUNDS = Number(args.rounds);
const limits = { maxBytes: 64 * 2 ** 20, maxPixels: 50_000_000, maxImages: 64 };
const THREADS = Math.min(4, os.availableParallelism());

/** Watches the event loop with a 1 ms timer; the returned function stops it and gives the longest gap between ticks beyond the 1 ms asked for. */
function watchEventLoop() {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last - 1);
    last = now;
  }, 1);
  return async () => {
    await new Promise((resolve) => setTimeout(resolve, 5)); // one more tick, after the batch
    clearInterval(timer);
    return longest;
  };
}

/**
 * One batch inspected side by side, with the event loop's longest stall meanwhile. Each round takes
 * copies, made before the clock starts: a DICOM file's bytes are moved to the thread that reads it.
 */
async function inspectBatch(originals, checks) {
  const files = originals.map((bytes) => new Uint8Array(bytes));
  const stop = watchEventLoop();
  const started = performance.now();
  await Promise.all(files.map(async (bytes, i) => inspectUpload(bytes, `slice-${i}.dcm`, limits, checks)));
  const ms = performance.now() - started;
  return { ms, maxLoopDelayMs: await stop() };
}

const rows = [];
const DICOM_MODES = [['event loop', () => inlineDicomReader()], [`${THREADS} threads`, () => pooledDicomReader(THREADS)]];
for (const format of ['dicom', 'dicom-jpeg2000', 'jpeg']) {
  const { images, from } = await benchImages(COUNT, format);
  const modes = format === 'jpeg' ? [['libvips threads', () => inlineDicomReader()]] : DICOM_MODES;
  for (const [mode, makeCheck] of modes) {
    const check = makeCheck();
    const checks = { dicom: check };
    await inspectBatch(images.slice(0, 4), checks); // warm-up: codecs compiled, threads started
    const runs = [];
    for (let round = 0; round < ROUNDS; round++) runs.push(await inspectBatch(images, checks));
    await check.close();
    rows.push({
      format,
      decodedOn: mode,
      images: images.length,
      batchMsMedian: Number(median(runs.map((r) => r.ms)).toFixed(1)),
      imagesPerSecond: Number(((1000 * images.length) / median(runs.map((r) => r.ms))).toFixed(1)),
      maxEventLoopStallMsMedian: Number(median(runs.map((r) => r.maxLoopDelayMs)).toFixed(1)),
      from,
    });
  }
}

console.table(rows.map(({ format, decodedOn, images, batchMsMedian, imagesPerSecond, maxEventLoopStallMsMedian }) => ({ format, decodedOn, images, batchMsMedian, imagesPerSecond, maxEventLoopStallMsMedian })));
const result = { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAverage: os.loadavg(), rounds: ROUNDS, rows };
await mkdir(path.join(here, 'results'), { recursive: true });
await writeFile(path.join(here, 'results', 'intake.json'), `${JSON.stringify(result, null, 2)}\n`);
