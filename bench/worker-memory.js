// Worker memory benchmark: the inference worker's peak resident memory while it analyses a queue of
// images large in pixels, at several WORKER_CONCURRENCY settings. Each image is a Br35H scan (or noise
// without the datasets) enlarged to --side × --side (64 million pixels at most, the worker's limit):
// a PNG, a JPEG, or a DICOM file around one baseline JPEG frame. They are written once to
// data/scratch/worker-memory/ and reused. A job decodes its image for the models (grey levels, then
// cropped and resized) and again for the overlay (RGB), so its memory goes with its pixels.
// For each format, concurrency and round, a fresh worker (its own queue prefix and embedded S3
// directory, Redis at REDIS_URL, the models of models/ as they are) takes --jobs jobs of that image,
// all queued at once; the figure is its peak resident set (VmHWM) over the round, against its
// resident set once it was ready. Settings (WORKER_MAX_INFLIGHT_DECODE_BYTES=…, WORKER_MODEL_THREADS)
// are passed to the worker as they are given in the environment.
// Build first (npx tsc -b). Usage: node bench/worker-memory.js [--concurrency 1,2,4] [--jobs 4]
//   [--side 8000] [--rounds 3] [--formats png,jpeg,dicom] [--out bench/results/worker-memory.json].
//   Linux only (reads /proc).
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { EMBEDDED_S3_CREDENTIALS, ObjectStore, createInferenceQueue, enqueueInferenceBulk, originalKey, Redis, startEmbeddedS3 } from '@btd/shared';
import { removePrefix, systemEnv } from './lib/bench-system.js';
import { sliceDicom } from './lib/dicom-slice.js';
import { startService } from './lib/service-process.js';
import { median } from './lib/stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,2,4' },
    jobs: { type: 'string', default: '4' },
    side: { type: 'string', default: '8000' },
    rounds: { type: 'string', default: '3' },
    formats: { type: 'string', default: 'png,jpeg,dicom' },
    out: { type: 'string', default: 'bench/results/worker-memory.json' },
  },
});
const JOBS = Number(args.jobs);
const SIDE = Number(args.side);
const ROUNDS = Number(args.rounds);
/** Settings of the worker that this benchmark passes on from its own environment. */
const PASSED_SETTINGS = ['WORKER_MAX_INFLIGHT_DECODE_BYTES', 'WORKER_MODEL_THREADS', 'WORKER_MODEL_THREAD_COUNT', 'UV_THREADPOOL_SIZE', 'TF_BACKEND'];
const MiB = 2 ** 20;
const SCRATCH = path.join(ROOT, 'data/scratch/worker-memory');
const CONTENT_TYPES = { png: 'image/png', jpeg: 'image/jpeg', dicom: 'application/dicom' };

/** A scan to enlarge: the first Br35H tumour scan when the datasets are present, else noise. */
async function sourceScan() {
  const root = [path.resolve(ROOT, '../shared/datasets'), process.env.BTD_DATASETS_DIR].find((dir) => dir && existsSync(path.join(dir, 'br35h/yes')));
  if (!root) return { from: 'noise', image: sharp({ create: { width: 256, height: 256, channels: 3, noise: { type: 'gaussian', mean: 100, sigma: 40 } } }) };
  const dir = path.join(root, 'br35h/yes');
  const [name] = (await readdir(dir)).filter((file) => file.endsWith('.jpg')).sort();
  return { from: `br35h yes/${name}`, image: sharp(await readFile(path.join(dir, name))) };
}

/** The side × side image in `format`, written to the scratch folder once and read from it after. */
async function largeImage(format) {
  const file = path.join(SCRATCH, `${SIDE}.${format === 'dicom' ? 'dcm' : format}`);
  if (existsSync(file)) return readFile(file);
  await mkdir(SCRATCH, { recursive: true });
  const { image } = await sourceScan();
  const grey = await image.greyscale().resize(SIDE, SIDE, { fit: 'fill' }).raw().toBuffer();
  const raw = () => sharp(grey, { raw: { width: SIDE, height: SIDE, channels: 1 }, limitInputPixels: false });
  const jpeg = await raw().jpeg({ quality: 90 }).toBuffer();
  const bytes =
    format === 'png'
      ? await raw().png({ compressionLevel: 6 }).toBuffer()
      : format === 'jpeg'
        ? jpeg
        : sliceDicom(undefined, SIDE, { compressed: { transferSyntax: '1.2.840.10008.1.2.4.50', frame: jpeg }, uid: 7000 });
  await writeFile(file, bytes);
  return bytes;
}

/** The kB of a /proc/<pid>/status field (VmRSS, VmHWM). */
async function procKb(pid, field) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
}

function passedSettings() {
  return Object.fromEntries(PASSED_SETTINGS.filter((name) => process.env[name] !== undefined).map((name) => [name, process.env[name]]));
}

/** One round: a fresh worker at `concurrency` analyses `JOBS` jobs of one image, all queued at once. */
async function round(format, bytes, concurrency) {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'btd-worker-memory-'));
  const prefix = `bench-${randomUUID()}`;
  const s3 = await startEmbeddedS3({ directory: path.join(scratch, 's3') });
  const env = {
    ...systemEnv({ redisUrl: REDIS_URL, prefix, s3, bucket: 'bench', models: path.join(ROOT, 'models') }),
    ...passedSettings(),
    WORKER_CONCURRENCY: String(concurrency),
    WORKER_ID: 'bench-memory',
  };
  const store = new ObjectStore({
    s3Endpoint: s3.endpoint,
    s3Bucket: 'bench',
    s3Region: 'us-east-1',
    s3AccessKeyId: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    s3SecretAccessKey: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    s3ForcePathStyle: true,
  });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = createInferenceQueue(redis, prefix);
  const worker = startService('services/inference-worker/dist/main.js', env, 'inference worker ready');
  try {
    await worker.ready;
    const objectKey = originalKey({ clientId: 'bench', studyId: 'memory', imageId: 'original' });
    await store.put(objectKey, bytes, CONTENT_TYPES[format]);
    const before = await procKb(worker.pid, 'VmRSS');
    const peakBefore = await procKb(worker.pid, 'VmHWM');
    const started = performance.now();
    const items = Array.from({ length: JOBS }, (_, i) => ({ payload: { clientId: 'bench', studyId: 'memory', imageId: `image-${i}`, objectKey }, priority: 'routine' }));
    await enqueueInferenceBulk(queue, items);
    let counts;
    for (;;) {
      counts = await queue.getJobCounts('completed', 'failed');
      if (counts.completed + counts.failed >= JOBS) break;
      if (!worker.running()) throw new Error('the worker exited during the round (out of memory?)');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const seconds = (performance.now() - started) / 1000;
    const peak = await procKb(worker.pid, 'VmHWM');
    return { rssBeforeMiB: before / 1024, peakBeforeMiB: peakBefore / 1024, peakRssMiB: peak / 1024, seconds, completed: counts.completed, failed: counts.failed };
  } finally {
    await worker.stop();
    await queue.close();
    redis.disconnect();
    store.close();
    await s3.close();
    await removePrefix(REDIS_URL, prefix);
    await rm(scratch, { recursive: true, force: true });
  }
}

const { from } = await sourceScan();
const concurrencies = args.concurrency.split(',').map(Number);
const rows = [];
for (const format of args.formats.split(',')) {
  const bytes = await largeImage(format);
  for (const concurrency of concurrencies) {
    const runs = [];
    for (let i = 0; i < ROUNDS; i++) runs.push(await round(format, bytes, concurrency));
    rows.push({
      format,
      side: SIDE,
      concurrency,
      jobs: JOBS,
      imageKiB: Math.round(bytes.length / 1024),
      rssBeforeMiBMedian: Math.round(median(runs.map((run) => run.rssBeforeMiB))),
      peakRssMiBMedian: Math.round(median(runs.map((run) => run.peakRssMiB))),
      peakRssMiB: runs.map((run) => Math.round(run.peakRssMiB)),
      secondsMedian: Math.round(median(runs.map((run) => run.seconds)) * 10) / 10,
      completed: runs.map((run) => run.completed),
      failed: runs.map((run) => run.failed),
    });
  }
}

console.table(rows.map(({ peakRssMiB, completed, failed, ...row }) => ({ ...row, peakRssMiB: peakRssMiB.join(' '), completed: completed.join(' '), failed: failed.join(' ') })));
const result = { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryMiB: Math.round(os.totalmem() / MiB), loadAverage: os.loadavg(), rounds: ROUNDS, image: from, settings: passedSettings(), rows };
const out = path.resolve(ROOT, args.out);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
