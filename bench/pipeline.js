// Pipeline benchmark: the real API and inference worker processes on one machine, fed 256×256
// JPEGs (or DICOM slices, --format) through `POST /v1/studies`. For 1 and 2 workers it measures the maximum throughput
// (closed loop) and the submit-to-result latency at half that rate (fixed-rate open loop), next
// to the models' own throughput in a tight loop measured in the same run. A virtual machine's speed
// drifts from minute to minute, so the tight loop and the closed loop alternate for --rounds rounds
// and the verdicts use the medians: of the per-round ratios for pipeline over tight loop, and of the
// closed-loop rates for two workers over one (also given in units of each run's own tight loop, where drift cancels).
// "Result" = the moment the API has applied the worker's result (the study reads as done).
//
// Build first (npx tsc -b). BENCH_SERVICE_NODE_ARGS adds Node options to the services, e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them. Needs Redis (REDIS_URL, default redis://127.0.0.1:6379); starts its own
// s3rver, API and workers with a private queue prefix, and removes them afterwards.
//
// A last run has one worker with its models on a pool of threads, one per core
// (WORKER_MODEL_THREADS=true), the latency setting: each image's forward passes are spread over the cores.
//
// The load is --images distinct held-out Br35H scans (half with a tumour), each submitted as one
// 256×256 JPEG, in turn; --images 1 repeats one tumour scan, which the tumor-type model is unsure of.
// --format dicom submits each as a 512×512 12-bit MR DICOM file instead, as a PACS sends it, and
// dicom-jpeg2000 or dicom-jpeg-ls compressed losslessly (by GDCM's gdcmconv, DCMTK's dcmcjpls).
//
// --pin-workers gives each worker process one core of its own (worker i on core i, with `taskset`), as a
// worker container limited to one CPU would have: the one-worker run then uses one core for its
// models, decoding and I/O, and the two-worker run shows what a second core adds. The API, the S3
// server, Redis and the load generator are not pinned.
//
//   node bench/pipeline.js [--seconds 20] [--rounds 3] [--workers 1,2] [--concurrency 2] [--images 32] [--model-threads false] [--pin-workers]
//     [--format jpeg|dicom|dicom-jpeg2000|dicom-jpeg-ls]
// Writes bench/results/pipeline.json (pipeline-<format>.json for a DICOM format).
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { QueueEvents } from 'bullmq';
import { getBackendInfo, initBackend, loadModel, writeInitialArtifact } from '@btd/model';
import { RESULTS_QUEUE, Redis, startEmbeddedS3 } from '@btd/shared';
import { benchImages } from './lib/bench-images.js';
import { removePrefix, systemEnv } from './lib/bench-system.js';
import { freePort, startService } from './lib/service-process.js';
import { postStudy, studyUploadBody } from './lib/study-upload.js';
import { median } from './lib/stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TARGETS = { oneWorkerOverTightLoop: 0.8, twoWorkersOverOne: 1.6, p50AtHalfRateMs: 100 };

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '1,2' },
    concurrency: { type: 'string', default: '2' },
    // Distinct held-out scans submitted in turn (half tumour, half healthy); 1: one tumour scan only.
    images: { type: 'string', default: '32' },
    // Also one worker with its models on a thread per core (WORKER_MODEL_THREADS=true).
    'model-threads': { type: 'string', default: 'true' },
    // Each worker on a core of its own (worker i on core i); the model-threads run stays unpinned.
    'pin-workers': { type: 'boolean', default: false },
    // What is submitted: jpeg (256×256), or a 512×512 12-bit MR slice as dicom, dicom-jpeg2000 or dicom-jpeg-ls.
    format: { type: 'string', default: 'jpeg' },
  },
});
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const WORKER_COUNTS = args.workers.split(',').map(Number);
const WORKER_CONCURRENCY = Number(args.concurrency);
const IMAGES = Number(args.images);
const PIN_WORKERS = args['pin-workers'];
const FORMAT = args.format;
/** One results file per format, so that a DICOM run does not replace the JPEG figures. */
const OUTPUT = path.join(ROOT, `bench/results/pipeline${FORMAT === 'jpeg' ? '' : `-${FORMAT}`}.json`);
/** Pipeline runs: the worker counts, then (unless --model-threads false) one worker with model threads. */
const SCENARIOS = [
  ...WORKER_COUNTS.map((workers) => ({ workers, modelThreads: false, pinned: PIN_WORKERS })),
  ...(args['model-threads'] === 'false' ? [] : [{ workers: 1, modelThreads: true, pinned: false }]),
];

const round2 = (x) => Math.round(x * 100) / 100;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Percentile with linear interpolation between the two nearest ranks. */
function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.min(low + 1, sorted.length - 1);
  return Math.round((sorted[low] + (sorted[high] - sorted[low]) * (rank - low)) * 10) / 10;
}

/** The shipped models, or untrained ones of the same architecture (same cost) in a temp dir. */
async function modelsDir(scratch) {
  const shipped = path.join(ROOT, 'models');
  const tasks = ['tumor-binary', 'tumor-type'];
  if (tasks.every((task) => existsSync(path.join(shipped, task, 'manifest.json')))) return { dir: shipped, shipped: true };
  const dir = path.join(scratch, 'models');
  for (const task of tasks) await writeInitialArtifact({ task, outDir: path.join(dir, task), version: 'bench' });
  return { dir, shipped: false };
}

/** Both models back to back on each image in turn, as a worker runs them, without any I/O. */
async function tightLoop(dir, images, seconds) {
  const binary = await loadModel(path.join(dir, 'tumor-binary'));
  const type = await loadModel(path.join(dir, 'tumor-type'));
  let next = 0;
  const once = async () => {
    // One fresh buffer per image, as a worker downloads it: both models share its preprocessing.
    const bytes = Buffer.from(images[next++ % images.length]);
    await binary.predict(bytes, { heatmap: true });
    await type.predict(bytes, { heatmap: false });
  };
  for (let i = 0; i < Math.max(10, images.length); i += 1) await once();
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    await once();
    count += 1;
  }
  const elapsed = (performance.now() - started) / 1000;
  binary.dispose();
  type.dispose();
  return { imagesPerSecond: Math.round((count / elapsed) * 100) / 100, images: count, seconds: Math.round(elapsed * 10) / 10 };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; null without /proc. */
async function cpuSeconds(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name: state is the first; utime and stime are the 12th and 13th, in clock ticks (100 Hz on Linux).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** Where the CPU goes: CPU time of every process of the system, to be divided per image. */
async function cpuSnapshot(system, workers) {
  const own = process.cpuUsage();
  return {
    api: await cpuSeconds(system.api.pid),
    workers: (await Promise.all(workers.map((worker) => cpuSeconds(worker.pid)))).reduce((sum, value) => (sum === null || value === null ? null : sum + value), 0),
    // The benchmark's own process hosts the embedded S3 server and the load generator.
    s3AndLoadGenerator: (own.user + own.system) / 1e6,
    redis: system.redisPid ? await cpuSeconds(system.redisPid) : null,
  };
}

function cpuMsPerImage(before, after, images) {
  const out = {};
  for (const key of Object.keys(before)) {
    out[key] = before[key] === null || after[key] === null || images === 0 ? null : Math.round(((after[key] - before[key]) * 1000 * 10) / images) / 10;
  }
  out.total = Object.values(out).every((value) => value !== null) ? Math.round(Object.values(out).reduce((a, b) => a + b, 0) * 10) / 10 : null;
  return out;
}

/** Submits studies and times each one until the API has applied its result. */
class Client {
  constructor(url, key, images, contentType, events) {
    this.url = url;
    this.key = key;
    this.uploads = images.map((image) => studyUploadBody(image, contentType));
    this.next = 0;
    this.waiting = new Map(); // result job id → resolve
    this.early = new Map(); // result job id → time, for results applied before the POST answered
    events.on('completed', ({ jobId }) => {
      const now = performance.now();
      const resolve = this.waiting.get(jobId);
      if (resolve) resolve(now);
      else this.early.set(jobId, now);
    });
  }

  async submit() {
    const started = performance.now();
    const response = await postStudy(this.url, this.key, this.uploads[this.next++ % this.uploads.length]);
    if (response.status !== 202) throw new Error(`submission answered ${response.status}: ${JSON.stringify(response.body)}`);
    const { studyId, images } = response.body;
    const accepted = performance.now();
    const jobId = `result-${images[0].imageId}`;
    const finished = this.early.get(jobId) ?? (await new Promise((resolve) => this.waiting.set(jobId, resolve)));
    this.early.delete(jobId);
    this.waiting.delete(jobId);
    return { ms: finished - started, submitMs: accepted - started, studyId };
  }

  /** The worker's own timings of a finished study's image (read after a measurement, never during one). */
  async workerTimings(studyId) {
    const response = await fetch(`${this.url}/v1/studies/${studyId}`, { headers: { authorization: `Bearer ${this.key}` } });
    const study = await response.json();
    return study.images[0]?.result?.timings;
  }
}

/**
 * Splits submit-to-result latency: the POST until its 202, the worker's job (download, models,
 * heatmap, upload; it may start before the 202 is sent), and everything outside the job (the POST,
 * the queue pick-up, result delivery and the API applying it).
 */
async function latencyBreakdown(client, samples) {
  const parts = { submitMs: [], workerJobMs: [], downloadMs: [], predictSpanMs: [], uploadMs: [], workerModelsMs: [], outsideJobMs: [] };
  for (const sample of samples) {
    const timings = await client.workerTimings(sample.studyId);
    if (!timings) continue;
    parts.submitMs.push(sample.submitMs);
    parts.workerJobMs.push(timings.totalMs);
    parts.downloadMs.push(timings.downloadMs);
    // Wall time of the job outside its download and upload: both models and the overlay, at once with
    // model threads (and the look for a result already posted, one Redis round trip).
    parts.predictSpanMs.push(timings.totalMs - timings.downloadMs - timings.uploadMs);
    parts.uploadMs.push(timings.uploadMs);
    // The models' preprocessing, forward passes and heatmap on the job's clock (side by side counted
    // once): within the span above, whose rest is the overlay and the look for a posted result.
    parts.workerModelsMs.push(timings.preprocessMs + timings.modelMs + timings.heatmapMs);
    parts.outsideJobMs.push(sample.ms - timings.totalMs);
  }
  return Object.fromEntries(Object.entries(parts).map(([key, values]) => [key, percentile(values, 50)]));
}

/** `clients` loops of submit → wait for result, for `seconds`. */
async function closedLoop(client, clients, seconds) {
  const latencies = [];
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) latencies.push((await client.submit()).ms);
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return summarise(latencies, elapsed, { clients });
}

/** Submits at a fixed rate regardless of completions (open loop), for `seconds`. */
async function fixedRate(client, ratePerSecond, seconds) {
  const samples = [];
  const pending = [];
  const interval = 1000 / ratePerSecond;
  const started = performance.now();
  for (let i = 0; i < Math.floor(ratePerSecond * seconds); i += 1) {
    const due = started + i * interval;
    await sleep(Math.max(0, due - performance.now()));
    pending.push(client.submit().then((sample) => samples.push(sample)));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - started) / 1000;
  const result = summarise(
    samples.map((sample) => sample.ms),
    elapsed,
    { ratePerSecond: Math.round(ratePerSecond * 100) / 100 },
  );
  return { ...result, p50BreakdownMs: await latencyBreakdown(client, samples) };
}

function summarise(latencies, elapsed, extra) {
  return {
    ...extra,
    images: latencies.length,
    imagesPerSecond: Math.round((latencies.length / elapsed) * 100) / 100,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    p99Ms: percentile(latencies, 99),
  };
}

/** Scratch dir, s3rver, Redis prefix and API for the whole run. */
async function startSystem(scratch, models) {
  const prefix = `bench-${randomUUID()}`;
  const s3 = await startEmbeddedS3({ directory: path.join(scratch, 's3') });
  const key = randomBytes(24).toString('base64url');
  const port = await freePort();
  const env = systemEnv({ redisUrl: REDIS_URL, prefix, s3, bucket: 'bench', models });
  const api = startService('services/api/dist/main.js', { ...env, PORT: String(port), HOST: '127.0.0.1', API_KEYS: `bench:${key}`, DATA_DIR: scratch }, 'API listening');
  await api.ready;
  const redis = new Redis(REDIS_URL);
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]) || null;
  redis.disconnect();
  return { env, prefix, s3, api, key, url: `http://127.0.0.1:${port}`, redisPid };
}

/**
 * One scenario: the workers start once, then each round measures the models' tight loop (the
 * workers idle meanwhile) and right after it the pipeline's closed loop; the fixed-rate run goes
 * at half the median closed-loop rate.
 */
async function measureWorkers(system, client, { workers: count, modelThreads, pinned }, modelsDir, images) {
  const env = { ...system.env, WORKER_CONCURRENCY: String(WORKER_CONCURRENCY), WORKER_MODEL_THREADS: String(modelThreads) };
  const cores = os.cpus().length;
  const workers = Array.from({ length: count }, (_, i) =>
    startService('services/inference-worker/dist/main.js', { ...env, WORKER_ID: `bench-${i + 1}` }, 'inference worker ready', { cpu: pinned ? i % cores : undefined }),
  );
  try {
    await Promise.all(workers.map((worker) => worker.ready));
    await closedLoop(client, 2 * count, 3); // warm-up: JIT, connection pools, first-use allocations
    const rounds = [];
    for (let r = 0; r < ROUNDS; r += 1) {
      const tight = await tightLoop(modelsDir, images, Math.min(SECONDS, 10));
      const cpuBefore = await cpuSnapshot(system, workers);
      const closed = await closedLoop(client, 2 * count * WORKER_CONCURRENCY, SECONDS);
      closed.cpuMsPerImage = cpuMsPerImage(cpuBefore, await cpuSnapshot(system, workers), closed.images);
      rounds.push({ tightLoop: tight, closedLoop: closed, overTightLoop: round2(closed.imagesPerSecond / tight.imagesPerSecond) });
    }
    // The round whose ratio is the median stands for the scenario in the table.
    const ratio = median(rounds.map((round) => round.overTightLoop));
    const typical = rounds.find((round) => round.overTightLoop === ratio);
    const closedRate = median(rounds.map((round) => round.closedLoop.imagesPerSecond));
    const halfRate = await fixedRate(client, closedRate / 2, SECONDS);
    return {
      workers: count,
      modelThreads,
      pinnedToOneCoreEach: pinned,
      workerConcurrency: WORKER_CONCURRENCY,
      rounds,
      medians: { tightLoop: median(rounds.map((round) => round.tightLoop.imagesPerSecond)), closedLoop: closedRate, overTightLoop: ratio },
      typicalRound: typical,
      fixedRateAtHalfMax: halfRate,
    };
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
  }
}

/** The runs without model threads, by worker count. */
function runsByWorkerCount(runs) {
  return Object.fromEntries(runs.filter((run) => !run.modelThreads).map((run) => [run.workers, run]));
}

function verdicts(runs) {
  const byCount = runsByWorkerCount(runs);
  const threaded = runs.find((run) => run.modelThreads);
  const one = byCount[1]?.medians.closedLoop;
  const two = byCount[2]?.medians.closedLoop;
  const ratio = (a, b) => (a && b ? round2(a / b) : null);
  const p50 = byCount[1]?.fixedRateAtHalfMax.p50Ms ?? null;
  return {
    oneWorkerOverTightLoop: { value: byCount[1]?.medians.overTightLoop ?? null, target: TARGETS.oneWorkerOverTightLoop },
    twoWorkersOverOne: { value: ratio(two, one), target: TARGETS.twoWorkersOverOne },
    // The same ratio in units of each run's own tight loop, so that the machine's drift between the runs cancels.
    twoWorkersOverOneInTightLoops: { value: ratio(byCount[2]?.medians.overTightLoop, byCount[1]?.medians.overTightLoop), target: TARGETS.twoWorkersOverOne },
    p50AtHalfRateMs: { value: p50, target: TARGETS.p50AtHalfRateMs, lowerIsBetter: true },
    ...(threaded ? { p50AtHalfRateModelThreadsMs: { value: threaded.fixedRateAtHalfMax.p50Ms, target: TARGETS.p50AtHalfRateMs, lowerIsBetter: true } } : {}),
  };
}

/**
 * What the machine's cores allow, from the CPU time the whole system (API, workers, S3 server, Redis,
 * load generator) spent per image: with every core busy at that cost, no number of workers can pass
 * `cores × 1000 / total` images/s. One worker's closed loop also says how many cores it kept busy.
 */
function cpuLimits(runs) {
  const cores = os.cpus().length;
  const byCount = runsByWorkerCount(runs);
  const busy = (run) => {
    const total = run?.typicalRound.closedLoop.cpuMsPerImage.total;
    return total ? { total, rate: run.typicalRound.closedLoop.imagesPerSecond } : null;
  };
  const one = busy(byCount[1]);
  const two = busy(byCount[2]);
  const ceiling = two ? round2((cores * 1000) / two.total) : null;
  return {
    cores,
    coresBusyWithOneWorker: one ? round2((one.total * one.rate) / 1000) : null,
    twoWorkersCeilingImagesPerSecond: ceiling,
    // The most two workers could reach over one worker's median closed-loop rate on these cores.
    twoWorkersOverOneCeiling: ceiling && byCount[1] ? round2(ceiling / byCount[1].medians.closedLoop) : null,
    twoWorkersShareOfCeiling: ceiling && byCount[2] ? round2(byCount[2].typicalRound.closedLoop.imagesPerSecond / ceiling) : null,
  };
}

const runLabel = (run) =>
  `${run.workers} worker${run.workers > 1 ? 's' : ''}${run.pinnedToOneCoreEach ? ', one core each' : ''}${run.modelThreads ? ', model threads' : ''}`;

function printRows(rows) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column])).join('  '));
}

function printTable(runs, checks, limits) {
  const rows = [['setup', 'mode', 'images/s', 'p50 ms', 'p95 ms', 'p99 ms']];
  for (const run of runs) {
    run.rounds.forEach((round, i) => {
      rows.push([`round ${i + 1}: models only`, 'tight loop', String(round.tightLoop.imagesPerSecond), '', '', '']);
      const closed = round.closedLoop;
      rows.push([`round ${i + 1}: ${runLabel(run)}`, `closed loop (${round.overTightLoop}× tight)`, String(closed.imagesPerSecond), String(closed.p50Ms), String(closed.p95Ms), String(closed.p99Ms)]);
    });
    const fixed = run.fixedRateAtHalfMax;
    rows.push([runLabel(run), `fixed ${fixed.ratePerSecond}/s`, String(fixed.imagesPerSecond), String(fixed.p50Ms), String(fixed.p95Ms), String(fixed.p99Ms)]);
  }
  printRows(rows);
  console.log('');
  const cpuRows = [['CPU ms per image (median round)', 'api', 'workers', 's3 + load generator', 'redis', 'total']];
  for (const run of runs) {
    const cpu = run.typicalRound.closedLoop.cpuMsPerImage;
    cpuRows.push([runLabel(run), ...['api', 'workers', 's3AndLoadGenerator', 'redis', 'total'].map((key) => String(cpu[key]))]);
  }
  printRows(cpuRows);
  console.log('');
  const parts = ['submitMs', 'workerJobMs', 'downloadMs', 'predictSpanMs', 'uploadMs', 'workerModelsMs', 'outsideJobMs'];
  const latencyRows = [['p50 parts at half rate (ms)', 'POST until 202', 'worker job', 'download', 'models + overlay', 'upload', 'models', 'outside the job']];
  for (const run of runs) latencyRows.push([runLabel(run), ...parts.map((key) => String(run.fixedRateAtHalfMax.p50BreakdownMs[key]))]);
  printRows(latencyRows);
  console.log('');
  for (const [name, check] of Object.entries(checks)) {
    const met = check.value === null ? 'n/a' : (check.lowerIsBetter ? check.value <= check.target : check.value >= check.target) ? 'met' : 'NOT met';
    console.log(`${name}: ${check.value} (target ${check.lowerIsBetter ? '≤' : '≥'} ${check.target}) ${met}`);
  }
  if (limits.twoWorkersCeilingImagesPerSecond === null) return;
  console.log(
    `\nCPU limit: one worker's system kept ${limits.coresBusyWithOneWorker} of ${limits.cores} cores busy; at the two-worker CPU cost per image ` +
      `the cores carry at most ${limits.twoWorkersCeilingImagesPerSecond} images/s, ${limits.twoWorkersOverOneCeiling}× one worker; ` +
      `two workers reached ${Math.round(limits.twoWorkersShareOfCeiling * 100)}% of that (median round)`,
  );
}

const loadAtStart = os.loadavg().map((load) => Math.round(load * 100) / 100);

async function main() {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'btd-bench-'));
  const backend = await initBackend(process.env.TF_BACKEND ? { prefer: process.env.TF_BACKEND } : {});
  const { images, from, width, height, contentType } = await benchImages(IMAGES, FORMAT);
  const models = await modelsDir(scratch);
  const system = await startSystem(scratch, models.dir);
  const events = new QueueEvents(RESULTS_QUEUE, { connection: { url: REDIS_URL }, prefix: system.prefix });
  await events.waitUntilReady();
  const client = new Client(system.url, system.key, images, contentType, events);
  const runs = [];
  try {
    for (const scenario of SCENARIOS) runs.push(await measureWorkers(system, client, scenario, models.dir, images));
  } finally {
    await events.close();
    await system.api.stop();
    await system.s3.close();
    await removePrefix(REDIS_URL, system.prefix);
    await rm(scratch, { recursive: true, force: true });
  }
  const checks = verdicts(runs);
  const limits = cpuLimits(runs);
  printTable(runs, checks, limits);
  const report = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    // Other work on the machine skews every number here; the 1-minute load average says how much.
    loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map((load) => Math.round(load * 100) / 100) },
    backend: getBackendInfo() ?? backend,
    models: models.shipped ? 'shipped (models/)' : 'untrained, same architecture (no shipped models yet)',
    images: { count: images.length, width, height, format: FORMAT, meanBytes: Math.round(images.reduce((sum, image) => sum + image.length, 0) / images.length), from },
    secondsPerMeasurement: SECONDS,
    rounds: ROUNDS,
    pinnedWorkers: PIN_WORKERS,
    runs,
    targets: checks,
    cpuLimits: limits,
  };
  await writeFile(OUTPUT, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), OUTPUT)}`);
}

await main();
