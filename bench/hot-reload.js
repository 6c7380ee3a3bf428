// Hot-reload benchmark: the real inference worker (processor, registry-backed model provider)
// under a steady stream of jobs; mid-run a new version is promoted. Measures the time from the
// promotion to the first result served by the new version, and job latency (submit → result)
// before the promotion and during the swap, in the same run.
// Build first: npx tsc -b. Needs Redis (REDIS_URL, default redis://127.0.0.1:6379) and the
// datasets (../shared/datasets or BTD_DATASETS_DIR). Writes bench/results/hot-reload.json.
//
//   node bench/hot-reload.js [seconds before the first promotion = 20] [promotions = 5]
// The worker runs its models on a thread of their own, as it does by default; with
// BENCH_MODEL_THREADS=true on a pool of a thread per core (WORKER_MODEL_THREADS=true), onto whose
// threads a promoted version then loads one by one.
// Promotions alternate between two versions, 8 s apart; "during the swap" pools the jobs submitted
// from each promotion until 2 s after the first result of the new version.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import sharp from 'sharp';
import { initBackend, writeInitialArtifact } from '@btd/model';
import {
  EMBEDDED_S3_CREDENTIALS,
  ModelRegistry,
  ObjectStore,
  RESULTS_QUEUE,
  Redis,
  createInferenceQueue,
  createLogger,
  createResultsQueue,
  createWorkerConnection,
  enqueueInference,
  inferenceJobId,
  originalKey,
  startEmbeddedS3,
} from '@btd/shared';
import { ModelThreadPool, RegistryModelProvider, startInferenceWorker } from '@btd/inference-worker';
import { republished } from './lib/republished.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = path.join(ROOT, 'bench', 'results', 'hot-reload.json');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const BEFORE_S = Number(process.argv[2] ?? 20);
const MODEL_THREADS = process.env.BENCH_MODEL_THREADS === 'true';
const SWAPS = Number(process.argv[3] ?? 5);
/** Seconds between promotions: the swap, its tail and a return to steady state fit in it. */
const SWAP_GAP_S = 8;
const WARMUP_S = 3;
/** Jobs submitted from the promotion until this long after the first new-version result count as "during the swap". */
const SWAP_WINDOW_TAIL_MS = 2000;
const TARGETS = { promotionToFirstNewResultMs: 2000, p99DuringOverBefore: 1.5 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const quantile = (xs, q) => {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
};
const round = (x) => (x === null ? null : Math.round(x * 10) / 10);

function datasetsDir() {
  const dir = [path.resolve(ROOT, '../shared/datasets'), process.env.BTD_DATASETS_DIR].find((d) => d && existsSync(d));
  if (!dir) throw new Error('datasets not found: set BTD_DATASETS_DIR');
  return dir;
}

/** Eight real slices as 256×256 JPEGs, the size the pipeline is specified for. */
async function sampleImages() {
  const dir = path.join(datasetsDir(), 'br35h', 'yes');
  const names = (await readdir(dir)).filter((n) => n.endsWith('.jpg')).sort().slice(0, 8);
  return Promise.all(names.map(async (n) => sharp(await readFile(path.join(dir, n))).resize(256, 256).jpeg({ quality: 90 }).toBuffer()));
}

/**
 * The models to serve: the shipped ones where `models/<task>/` has one; otherwise an untrained model
 * of the shipped architecture's size, so loading and inference cost what they will in production.
 */
async function prepareModels(scratch) {
  const modelsDir = path.join(scratch, 'models');
  const kinds = {};
  for (const task of ['tumor-binary', 'tumor-type']) {
    const bundled = path.join(ROOT, 'models', task);
    if (existsSync(path.join(bundled, 'manifest.json'))) {
      await cp(bundled, path.join(modelsDir, task), { recursive: true });
      kinds[task] = 'shipped';
    } else {
      await writeInitialArtifact({ task, outDir: path.join(modelsDir, task), inputSize: 96, filters: [16, 32, 64, 128], version: 'bench-1' });
      kinds[task] = 'untrained 96 px, 16-32-64-128 filters';
    }
  }
  return { modelsDir, kind: Object.entries(kinds).map(([task, kind]) => `${task}: ${kind}`).join('; ') };
}

async function openWorld(scratch) {
  const s3 = await startEmbeddedS3({ directory: path.join(scratch, 's3') });
  const prefix = `bench-${randomUUID()}`;
  const store = new ObjectStore({
    s3Endpoint: s3.endpoint,
    s3Bucket: `bench-${randomUUID().slice(0, 8)}`,
    s3Region: 'us-east-1',
    s3AccessKeyId: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    s3SecretAccessKey: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    s3ForcePathStyle: true,
  });
  await store.ensureBucket();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const connection = createWorkerConnection(REDIS_URL);
  return { s3, prefix, store, redis, connection };
}

async function closeWorld(world) {
  let cursor = '0';
  do {
    const [next, keys] = await world.redis.scan(cursor, 'MATCH', `${world.prefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await world.redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await world.store.deletePrefix('').catch(() => 0);
  world.store.close();
  world.redis.disconnect();
  world.connection.disconnect();
  await world.s3.close();
}

/** Consumes the results queue as the API would, recording when each image's result arrived and from which model. */
function collectResults(world, inference) {
  const arrived = new Map();
  const connection = world.connection.duplicate();
  const worker = new Worker(
    RESULTS_QUEUE,
    async (job) => {
      const at = Date.now();
      const message = job.data;
      const binary = message.kind === 'succeeded' ? message.summary.models.find((m) => m.task === 'tumor-binary') : undefined;
      // When the worker began the job: it took its models then.
      const startedAt = (await inference.getJob(inferenceJobId(message.imageId)))?.processedOn;
      arrived.set(message.imageId, { at, startedAt, kind: message.kind, version: binary?.version });
    },
    { connection, prefix: world.prefix, concurrency: 8 },
  );
  const close = async () => {
    await worker.close();
    connection.disconnect();
  };
  return { arrived, consumer: { close } };
}

/** Submits one job every `intervalMs` until `stopAt`; returns the submit times by image id. */
async function produce(world, inference, images, intervalMs, stopAt, submitted) {
  let next = Date.now();
  while (Date.now() < stopAt) {
    const imageId = `img-${submitted.size}`;
    const ids = { clientId: 'bench', studyId: 'study-1', imageId };
    const key = originalKey(ids);
    await world.store.put(key, images[submitted.size % images.length], 'image/jpeg');
    submitted.set(imageId, Date.now());
    await enqueueInference(inference, { ...ids, objectKey: key }, 'routine');
    next += intervalMs;
    await sleep(Math.max(0, next - Date.now()));
  }
}

/** Service time of one job with the worker otherwise idle: the basis of the offered rate. */
async function measureServiceTime(world, inference, images, arrived) {
  const times = [];
  for (let i = 0; i < 10; i++) {
    const ids = { clientId: 'bench', studyId: 'warmup', imageId: `warm-${i}` };
    await world.store.put(originalKey(ids), images[i % images.length], 'image/jpeg');
    const started = Date.now();
    await enqueueInference(inference, { ...ids, objectKey: originalKey(ids) }, 'routine');
    while (!arrived.has(ids.imageId)) await sleep(2);
    times.push(arrived.get(ids.imageId).at - started);
  }
  return quantile(times.slice(2), 0.5);
}

/**
 * Per promotion: the first result of its version from a job that began after it, and the results
 * of jobs that began after the worker had swapped in the new version yet still carry the old one
 * (there should be none).
 */
function swapsOf(promotions, swapped, arrived) {
  return promotions.map((promotion, i) => {
    const until = promotions[i + 1]?.at ?? Infinity;
    const began = [...arrived.values()].filter((r) => r.startedAt >= promotion.at && r.startedAt < until);
    const fresh = began.filter((r) => r.version === promotion.version).map((r) => r.at);
    const firstNewAt = fresh.length > 0 ? Math.min(...fresh) : null;
    const swappedAt = swapped.find((w) => w.to === promotion.version && w.at >= promotion.at && w.at < until)?.at;
    const staleAfterSwitch = swappedAt === undefined ? null : began.filter((r) => r.startedAt > swappedAt && r.version !== promotion.version).length;
    return { ...promotion, firstNewAt, promotionToFirstNewResultMs: firstNewAt === null ? null : firstNewAt - promotion.at, staleAfterSwitch };
  });
}

function summarise(submitted, arrived, warmedAt, promotions, swapped) {
  const swaps = swapsOf(promotions, swapped, arrived);
  const latencies = (inWindow) => [...submitted].filter(([id, at]) => inWindow(at) && arrived.has(id)).map(([id, at]) => arrived.get(id).at - at);
  const before = latencies((at) => at >= warmedAt && at < promotions[0].at);
  const during = latencies((at) => swaps.some((w) => at >= w.at && at < (w.firstNewAt ?? w.at + SWAP_GAP_S * 1000) + SWAP_WINDOW_TAIL_MS));
  const stats = (xs) => ({ jobs: xs.length, p50: round(quantile(xs, 0.5)), p95: round(quantile(xs, 0.95)), p99: round(quantile(xs, 0.99)), max: round(quantile(xs, 1)) });
  const results = [...arrived.values()];
  return {
    swaps: swaps.map(({ version, promotionToFirstNewResultMs, staleAfterSwitch }) => ({ version, promotionToFirstNewResultMs, staleAfterSwitch })),
    // A swap whose version served no job before the next promotion counts as missing the target.
    promotionToFirstNewResultMs: swaps.some((w) => w.firstNewAt === null) ? null : Math.max(...swaps.map((w) => w.promotionToFirstNewResultMs)),
    before: stats(before),
    during: stats(during),
    submitted: submitted.size,
    completed: results.filter((r) => r.kind === 'succeeded').length,
    failed: results.filter((r) => r.kind === 'failed').length,
    lost: [...submitted.keys()].filter((id) => !arrived.has(id)).length,
  };
}

function printTable(report) {
  const { run } = report;
  console.log(`\nhot reload under steady load (${report.models}; backend ${report.backend}; ${report.ratePerSecond} jobs/s offered)\n`);
  console.log('window            jobs   p50 ms   p95 ms   p99 ms   max ms');
  for (const [name, s] of [['before promotion', run.before], ['during swap', run.during]]) {
    console.log(`${name.padEnd(16)} ${String(s.jobs).padStart(5)} ${String(s.p50).padStart(8)} ${String(s.p95).padStart(8)} ${String(s.p99).padStart(8)} ${String(s.max).padStart(8)}`);
  }
  console.log('');
  const perSwap = run.swaps.map((w, i) => `${w.promotionToFirstNewResultMs ?? 'none'} ms (load + verify ${report.swaps.loadAndVerifyMs[i] ?? '?'} ms)`);
  console.log(`promotion → first result of the new version, per swap: ${perSwap.join(', ')}`);
  console.log(`  worst: ${run.promotionToFirstNewResultMs} ms (target ≤ ${TARGETS.promotionToFirstNewResultMs})`);
  console.log(`p99 during swaps / p99 before: ${report.p99Ratio} (target ≤ ${TARGETS.p99DuringOverBefore})`);
  const stale = run.swaps.reduce((n, w) => n + (w.staleAfterSwitch ?? 0), 0);
  console.log(`submitted ${run.submitted}, failed ${run.failed}, lost ${run.lost}, old-version results after a switch ${stale}`);
  if (!report.meetsTargets.workerKeptUp) console.log('WARNING: the worker fell behind the offered rate (a busy machine?); latencies are queueing, not swap, effects');
  console.log(`\nwritten to ${path.relative(ROOT, RESULTS)}`);
}

async function main() {
  const backend = await initBackend({ prefer: process.env.TF_BACKEND });
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'btd-bench-hot-reload-'));
  const world = await openWorld(scratch);
  const logger = createLogger({ name: 'bench', level: 'warn', pretty: false });
  const loadBefore = os.loadavg();
  try {
    const { modelsDir, kind } = await prepareModels(scratch);
    const images = await sampleImages();
    const registry = new ModelRegistry({ store: world.store, redis: world.redis, namespace: world.prefix });
    // As the worker runs them: on one thread of their own, or with BENCH_MODEL_THREADS on a thread per core.
    const pool = ModelThreadPool.start(MODEL_THREADS ? os.availableParallelism() : 1, 'wasm');
    const provider = new RegistryModelProvider({ registry, logger, workerId: 'bench-worker', modelsDir, load: (files) => pool.load(files) });
    await provider.start();
    const inference = createInferenceQueue(world.redis, world.prefix);
    const resultsQueue = createResultsQueue(world.redis, world.prefix);
    const config = { queuePrefix: world.prefix, concurrency: 1, lockDurationMs: 60_000, stalledIntervalMs: 30_000, maxStalledCount: 2, workerId: 'bench-worker', modelThreads: MODEL_THREADS };
    const worker = startInferenceWorker({ config, connection: world.connection, store: world.store, results: resultsQueue, models: provider, logger });
    const { arrived, consumer } = collectResults(world, inference);

    const serviceMs = await measureServiceTime(world, inference, images, arrived);
    // Half the worker's capacity: steady load with room to absorb the swap, as the latency target assumes.
    const intervalMs = serviceMs * 2;
    const next = await registry.publish('tumor-binary', await republished(modelsDir, 'tumor-binary'));
    const seeded = (await registry.promoted('tumor-binary')).version;
    const plan = Array.from({ length: SWAPS }, (_, i) => (i % 2 === 0 ? next.version : seeded));
    const submitted = new Map();
    const swapped = [];
    provider.on('swapped', (event) => swapped.push({ ...event, at: Date.now() }));
    const start = Date.now();
    const firstPromotionAt = start + (WARMUP_S + BEFORE_S) * 1000;
    const producing = produce(world, inference, images, intervalMs, firstPromotionAt + SWAPS * SWAP_GAP_S * 1000, submitted);
    const promotions = [];
    for (const [i, version] of plan.entries()) {
      await sleep(firstPromotionAt + i * SWAP_GAP_S * 1000 - Date.now());
      promotions.push({ version, at: Date.now() });
      await registry.promote('tumor-binary', version, { by: 'bench', reason: 'hot-reload benchmark' });
    }
    await producing;
    const drainedBy = Date.now() + 60_000;
    while (arrived.size < submitted.size + 10 && Date.now() < drainedBy) await sleep(50);

    const run = summarise(submitted, arrived, start + WARMUP_S * 1000, promotions, swapped);
    const report = {
      date: new Date().toISOString(),
      node: process.version,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      loadAverage: { before: loadBefore.map(round), after: os.loadavg().map(round) },
      backend: backend.name,
      models: kind,
      image: '256×256 JPEG (Br35H slices)',
      workerConcurrency: 1,
      modelThreads: MODEL_THREADS ? os.availableParallelism() : 1,
      serviceTimeMs: round(serviceMs),
      ratePerSecond: round(1000 / intervalMs),
      windowsSeconds: { warmup: WARMUP_S, before: BEFORE_S, betweenPromotions: SWAP_GAP_S, duringSwapTailMs: SWAP_WINDOW_TAIL_MS },
      run,
      swaps: { count: SWAPS, loadAndVerifyMs: swapped.map((w) => w.tookMs) },
      p99Ratio: run.before.p99 ? Math.round((run.during.p99 / run.before.p99) * 100) / 100 : null,
      targets: TARGETS,
    };
    report.meetsTargets = {
      promotionToFirstNewResult: run.promotionToFirstNewResultMs !== null && run.promotionToFirstNewResultMs <= TARGETS.promotionToFirstNewResultMs,
      p99DuringSwap: report.p99Ratio !== null && report.p99Ratio <= TARGETS.p99DuringOverBefore,
      noFailedOrLostJobs: run.failed === 0 && run.lost === 0,
      noOldVersionAfterSwitch: run.swaps.every((w) => (w.staleAfterSwitch ?? 0) === 0),
      // Latency figures only mean something when the worker kept up with the offered rate.
      workerKeptUp: run.before.p50 !== null && run.before.p50 < 4 * serviceMs,
    };
    await mkdir(path.dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(report, null, 2)}\n`);
    printTable(report);

    await worker.close();
    await consumer.close();
    await inference.close();
    await resultsQueue.close();
    await provider.close();
    await pool.close();
  } finally {
    await closeWorld(world);
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
