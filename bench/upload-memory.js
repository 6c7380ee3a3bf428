// Upload memory benchmark: the API's peak resident memory while --concurrent uploads of images that
// are small in bytes but large in pixels are inspected at once. Each is a --side × --side black image
// (within MAX_IMAGE_PIXELS, 50 million by default) of a few hundred kB: a PNG, a JPEG, a DICOM file
// around one baseline JPEG frame and, with --formats deflated, a 16-bit DICOM file whose data set is
// deflated (at most 5600 × 5600, which inflates to 63 MB, within the 64 MiB a data set may inflate to).
// Intake decodes every upload (and inflates a deflated one) to prove it whole, so its memory goes with
// its pixels, not its bytes.
// For each format and round, a fresh API (its own port, queue prefix and embedded S3 directory, Redis
// at REDIS_URL) takes the uploads, all sent at once; the figure is its peak resident set (VmHWM) over
// that round, against its resident set just before. Settings (MAX_INFLIGHT_DECODE_BYTES=…) are
// passed to the API as they are given in the environment.
// Build first (npx tsc -b). Usage: node bench/upload-memory.js [--concurrent 8] [--side 7000] [--rounds 3]
//   [--formats png,jpeg,dicom,deflated] [--out bench/results/upload-memory.json]. Linux only (reads /proc).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { startEmbeddedS3 } from '@btd/shared';
import { removePrefix, systemEnv } from './lib/bench-system.js';
import { sliceDicom } from './lib/dicom-slice.js';
import { freePort, startService } from './lib/service-process.js';
import { median } from './lib/stats.js';
import { postStudy, studyUploadBody } from './lib/study-upload.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const { values: args } = parseArgs({
  options: {
    concurrent: { type: 'string', default: '8' },
    side: { type: 'string', default: '7000' },
    rounds: { type: 'string', default: '3' },
    formats: { type: 'string', default: 'png,jpeg,dicom' },
    out: { type: 'string', default: 'bench/results/upload-memory.json' },
  },
});
const CONCURRENT = Number(args.concurrent);
const SIDE = Number(args.side);
const ROUNDS = Number(args.rounds);
/** Settings of the API that this benchmark passes on from its own environment. */
const PASSED_SETTINGS = ['MAX_INFLIGHT_UPLOAD_BYTES', 'MAX_INFLIGHT_DECODE_BYTES', 'MAX_IMAGE_PIXELS', 'INTAKE_DECODE_THREADS', 'UV_THREADPOOL_SIZE'];
const MiB = 2 ** 20;
/** The largest side of a 16-bit deflated DICOM slice whose data set inflates within its 64 MiB bound. */
const DEFLATED_SIDE = 5600;
const sideOf = (format) => (format === 'deflated' ? Math.min(SIDE, DEFLATED_SIDE) : SIDE);

/** A black side × side image in each format, with the Content-Type it is sent as. */
async function blackImage(format, uid) {
  if (format === 'deflated') {
    const side = sideOf(format);
    return { bytes: sliceDicom(new Uint8Array(side * side), side, { deflated: true, uid }), contentType: 'application/dicom' };
  }
  const black = () => sharp({ create: { width: SIDE, height: SIDE, channels: 3, background: '#000' } });
  if (format === 'png') return { bytes: await black().png({ compressionLevel: 9 }).toBuffer(), contentType: 'image/png' };
  const jpeg = await black().greyscale().jpeg({ quality: 90 }).toBuffer();
  if (format === 'jpeg') return { bytes: jpeg, contentType: 'image/jpeg' };
  // Baseline JPEG in DICOM: 8 bits stored, as a PACS sends a lossy export.
  return { bytes: sliceDicom(undefined, SIDE, { compressed: { transferSyntax: '1.2.840.10008.1.2.4.50', frame: jpeg }, uid }), contentType: 'application/dicom' };
}

/** The kB of a /proc/<pid>/status field (VmRSS, VmHWM). */
async function procKb(pid, field) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
}

/** One round: a fresh API takes `CONCURRENT` uploads of one format at once. */
async function round(format) {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'btd-upload-memory-'));
  const prefix = `bench-${randomUUID()}`;
  const s3 = await startEmbeddedS3({ directory: path.join(scratch, 's3') });
  const key = randomBytes(24).toString('base64url');
  const port = await freePort();
  const passed = Object.fromEntries(PASSED_SETTINGS.filter((name) => process.env[name] !== undefined).map((name) => [name, process.env[name]]));
  const env = {
    ...systemEnv({ redisUrl: REDIS_URL, prefix, s3, bucket: 'bench', models: path.join(ROOT, 'models') }),
    ...passed,
    PORT: String(port),
    HOST: '127.0.0.1',
    API_KEYS: `bench:${key}`,
    DATA_DIR: scratch,
  };
  const api = startService('services/api/dist/main.js', env, 'API listening');
  try {
    await api.ready;
    const url = `http://127.0.0.1:${port}`;
    const bodies = await Promise.all(Array.from({ length: CONCURRENT }, async (_, i) => {
      const image = await blackImage(format, 1000 + i);
      return { ...studyUploadBody(image.bytes, image.contentType), imageBytes: image.bytes.length };
    }));
    const before = await procKb(api.pid, 'VmRSS');
    const peakBefore = await procKb(api.pid, 'VmHWM');
    const answers = await Promise.all(bodies.map(async (body) => postStudy(url, key, body)));
    const peak = await procKb(api.pid, 'VmHWM');
    const statuses = {};
    for (const { status, body } of answers) {
      const label = status === 202 ? '202' : `${status} ${body?.code ?? ''}`.trim();
      statuses[label] = (statuses[label] ?? 0) + 1;
    }
    return { rssBeforeMiB: before / 1024, peakBeforeMiB: peakBefore / 1024, peakRssMiB: peak / 1024, imageBytes: bodies[0].imageBytes, statuses };
  } finally {
    await api.stop();
    await s3.close();
    await removePrefix(REDIS_URL, prefix);
    await rm(scratch, { recursive: true, force: true });
  }
}

const rows = [];
for (const format of args.formats.split(',')) {
  const runs = [];
  for (let i = 0; i < ROUNDS; i++) runs.push(await round(format));
  rows.push({
    format,
    side: sideOf(format),
    concurrent: CONCURRENT,
    imageKiB: Math.round(runs[0].imageBytes / 1024),
    rssBeforeMiBMedian: Math.round(median(runs.map((run) => run.rssBeforeMiB))),
    peakAtStartMiBMedian: Math.round(median(runs.map((run) => run.peakBeforeMiB))),
    peakRssMiBMedian: Math.round(median(runs.map((run) => run.peakRssMiB))),
    peakRssMiB: runs.map((run) => Math.round(run.peakRssMiB)),
    answers: runs.map((run) => run.statuses),
  });
}

console.table(rows.map(({ answers, peakRssMiB, ...row }) => ({ ...row, peakRssMiB: peakRssMiB.join(' '), answers: JSON.stringify(answers[0]) })));
const settings = Object.fromEntries(PASSED_SETTINGS.filter((name) => process.env[name] !== undefined).map((name) => [name, process.env[name]]));
const result = { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryMiB: Math.round(os.totalmem() / MiB), loadAverage: os.loadavg(), rounds: ROUNDS, settings, rows };
const out = path.resolve(ROOT, args.out);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
