// DICOM decode benchmark: what reading a 512×512 MR slice costs in each encoding btd reads, as intake
// (which decodes every upload once to prove it whole) and each job pay it (once: a worker preprocesses
// the image for its models and draws the overlay on its main thread, from one decode). The slice is a Br35H scan (or noise without the datasets) scaled to
// 512×512 and stored on 12 bits; the compressed files are made by DCMTK and GDCM (Debian packages
// `dcmtk` and `libgdcm-tools`) and OpenJPH (`openjph-tools`), and an encoding whose tool is missing is left out.
// Each row says whether the decoded slice is the uncompressed one exactly, and its mean absolute
// difference from it in grey levels (the loss of the one lossy encoding, 12-bit JPEG extended).
// Build first (npx tsc -b packages/model). Usage: node bench/dicom-decode.js [repeats=30].
// Writes bench/results/dicom-decode.json.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { decodeDicomGrey, decodeRgb, defaultPreprocessParams, preprocessImage } from '../packages/model/dist/index.js';
import { sliceDicom, storedValues, transcodeWith } from './lib/dicom-slice.js';
import { median } from './lib/stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repeats = Number(process.argv[2] ?? 30);
const SIDE = 512;
const MAX_PIXELS = 64_000_000;

/** The slice's 8-bit levels: a Br35H tumour scan when the datasets are present, else noise. */
async function sliceLevels() {
  const scan = path.resolve(here, '../../shared/datasets/br35h/yes/y0.jpg');
  const source = existsSync(scan) ? sharp(scan) : sharp({ create: { width: SIDE, height: SIDE, channels: 1, noise: { type: 'gaussian', mean: 100, sigma: 40 } } });
  return { from: existsSync(scan) ? 'br35h/yes/y0.jpg' : 'noise', levels: await source.toColourspace('b-w').resize(SIDE, SIDE, { fit: 'fill' }).raw().toBuffer() };
}

const encodings = [
  ['uncompressed', null],
  ['deflated', ['dcmconv', '+td']],
  ['RLE lossless', ['dcmcrle']],
  ['JPEG lossless', ['dcmcjpeg', '+e1']],
  ['JPEG-LS lossless', ['dcmcjpls', '+el']],
  ['JPEG 2000 lossless', ['gdcmconv', '--j2k']],
  ['HTJ2K lossless', htj2k],
  ['JPEG extended 12-bit (lossy)', ['dcmcjpeg', '+ee']],
];

/** HTJ2K, which neither DCMTK nor GDCM writes: OpenJPH's command line (`openjph-tools`) encodes the slice, dcmjs wraps it. */
function htj2k(work, levels) {
  const pgm = path.join(work, 'slice.pgm');
  const codestream = path.join(work, 'slice.j2c');
  const values = storedValues(levels);
  const body = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => body.writeUInt16BE(v, 2 * i));
  writeFileSync(pgm, Buffer.concat([Buffer.from(`P5\n${SIDE} ${SIDE}\n4095\n`), body]));
  execFileSync('ojph_compress', ['-i', pgm, '-o', codestream, '-reversible', 'true'], { stdio: 'ignore' });
  return sliceDicom(levels, SIDE, { compressed: { transferSyntax: '1.2.840.10008.1.2.4.201', frame: readFileSync(codestream) } });
}

const params = defaultPreprocessParams(96);

/**
 * What a job's reading of its image costs, preprocessing for the models then decoding for the
 * overlay, at the median: from one buffer, as a worker does (one decode), and from two copies of it,
 * which defeats the decoded-frame cache (two decodes, as before it). Each repetition takes fresh
 * copies, so that no earlier repetition's decode is reused.
 */
async function jobDecodes(bytes) {
  const one = [];
  const two = [];
  for (let i = 0; i < repeats; i++) {
    const image = Buffer.from(bytes);
    const t0 = performance.now();
    await preprocessImage(image, params);
    await decodeRgb(image);
    one.push(performance.now() - t0);
    const [forModels, forOverlay] = [Buffer.from(bytes), Buffer.from(bytes)];
    const t1 = performance.now();
    await preprocessImage(forModels, params);
    await decodeRgb(forOverlay);
    two.push(performance.now() - t1);
  }
  return { oneDecode: Number(median(one).toFixed(2)), twoDecodes: Number(median(two).toFixed(2)) };
}

const work = await mkdtemp(path.join(os.tmpdir(), 'btd-dicom-bench-'));
const { from, levels } = await sliceLevels();
const source = path.join(work, 'uncompressed.dcm');
await writeFile(source, sliceDicom(levels, SIDE));
const reference = await decodeDicomGrey(await readFile(source), MAX_PIXELS);
const rows = [];
const sourceBytes = await readFile(source);
for (const [name, tool] of encodings) {
  let bytes = sourceBytes;
  try {
    if (typeof tool === 'function') bytes = tool(work, levels);
    else if (tool) bytes = await transcodeWith(tool, sourceBytes);
  } catch {
    console.warn(`${name}: ${typeof tool === 'function' ? 'ojph_compress' : tool[0]} is missing or failed; left out`);
    continue;
  }
  const first = performance.now();
  const grey = await decodeDicomGrey(bytes, MAX_PIXELS);
  const firstMs = performance.now() - first;
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await decodeDicomGrey(bytes, MAX_PIXELS);
    times.push(performance.now() - t0);
  }
  const same = Buffer.from(grey.data).equals(Buffer.from(reference.data));
  const meanDifference = grey.data.reduce((sum, v, i) => sum + Math.abs(v - reference.data[i]), 0) / grey.data.length;
  const job = await jobDecodes(bytes);
  rows.push({
    encoding: name,
    kilobytes: Math.round(bytes.length / 1024),
    firstDecodeMs: Number(firstMs.toFixed(1)),
    medianDecodeMs: Number(median(times).toFixed(2)),
    sameAsUncompressed: same,
    meanDifference: Number(meanDifference.toFixed(3)),
    jobOneDecodeMs: job.oneDecode,
    jobTwoDecodesMs: job.twoDecodes,
  });
}
await rm(work, { recursive: true, force: true });

console.table(rows);
const result = { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAverage: os.loadavg(), slice: `${SIDE}×${SIDE}, 12 bits stored, from ${from}`, repeats, rows };
await mkdir(path.join(here, 'results'), { recursive: true });
await writeFile(path.join(here, 'results', 'dicom-decode.json'), `${JSON.stringify(result, null, 2)}\n`);
