// Fault-injection benchmark: the real system (a Redis of its own with its append-only file, the
// embedded s3rver as its own process, the API and two inference workers, the bundled models seeded
// into the registry as `npm start` does) takes studies of Br35H scans from a client that behaves as
// a PACS integration does (an Idempotency-Key and an externalId per study, a callbackUrl, part of
// them in one batch, retries on network errors, 5xx and "in progress" answers with backoff), while
// a schedule of faults hits it: a worker killed (-9) and one stopped (SIGTERM), each restarted; the
// API killed (-9) and restarted three times; Redis stopped for 5 s and restarted on its data; s3rver
// killed for 10 s and restarted on its data; a model version promoted mid-batch; and, when asked for
// (--faults redis-kill), Redis killed (-9) three times mid-submission and restarted at once on its
// append-only file, kept with --appendfsync (what docker-compose.yml runs). A worker fault waits
// for a job in flight, an API kill for a submission, a job or a result in flight, a Redis kill for a
// submission just answered 202 and another under way (up to 20 s), and each records what was in
// flight when it struck. Then it checks that
// nothing was lost or duplicated: every study accepted and finished (done, not failed), one study per
// Idempotency-Key, the batch complete, one webhook per study and batch, no job left in any queue.
//
// Build first (npx tsc -b). Needs redis-server on the PATH; starts everything itself on free ports
// under a temp directory, and stops and removes it all at the end, Ctrl-C included.
//
//   node bench/faults.js [options]      (--help lists them with their defaults)
// Writes --out (bench/results/faults.json); exits 1 when a study, a webhook or a job was lost or
// duplicated, 2 on an option it does not know or a value it cannot take.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EMBEDDED_S3_CREDENTIALS, ModelRegistry, ObjectStore, Redis, pingRedis } from '@btd/shared';
import { freePort, startService } from './lib/service-process.js';
import { republished } from './lib/republished.js';
import { quantile } from './lib/stats.js';
import { studyUploadBody } from './lib/study-upload.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ALL_FAULTS = ['worker-kill', 'worker-term', 'api-kill', 'redis-restart', 's3-restart', 'promote'];
/** Faults a run makes only when --faults names them. */
const OPT_IN_FAULTS = ['redis-kill'];
/** Redis's appendfsync as docker-compose.yml runs it (Redis's own default, everysec, if it says none). */
const COMPOSE_APPENDFSYNC = /"--appendfsync",\s*"(\w+)"/.exec(await readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8'))?.[1] ?? 'everysec';

const USAGE = `Usage: node bench/faults.js [options]

  --studies N          studies submitted (default 60)
  --batch N            how many of them go into one batch, the others one by one (default: a third of --studies)
  --burst N            studies submitted together, every --interval seconds (default 4)
  --interval S         seconds between bursts (default 6)
  --data DIR           the Br35H folder the scans are drawn from (default ../shared/datasets/br35h, beside the repository)
  --faults LIST        the faults made, comma-separated, '' for none (default ${ALL_FAULTS.join(',')});
                       also takes ${OPT_IN_FAULTS.join(', ')}, which no run makes unless named
  --appendfsync MODE   Redis's appendfsync: always, everysec or no (default ${COMPOSE_APPENDFSYNC}, as docker-compose.yml runs it)
  --timeout S          seconds from the first submission until everything must have finished (default 1200)
  --out FILE           the results file (default bench/results/faults.json)
  --keep               keep the temp directory (the services' logs, Redis's and s3rver's data) (default: removed)
  -h, --help           print this and exit

Build first (npx tsc -b); needs redis-server on the PATH.`;

/** Says what is wrong with the command line, and how to use it, on stderr; exits 2. */
function usageError(message) {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function readOptions() {
  try {
    return parseArgs({
      options: {
        studies: { type: 'string', default: '60' },
        batch: { type: 'string' },
        data: { type: 'string', default: path.resolve(ROOT, '../shared/datasets/br35h') },
        faults: { type: 'string', default: ALL_FAULTS.join(',') },
        timeout: { type: 'string', default: '1200' },
        // Studies are submitted in bursts, so that the workers have a backlog now and then.
        burst: { type: 'string', default: '4' },
        interval: { type: 'string', default: '6' },
        appendfsync: { type: 'string', default: COMPOSE_APPENDFSYNC },
        out: { type: 'string', default: 'bench/results/faults.json' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    // An unknown option, a missing value or a stray argument.
    if (error.code?.startsWith('ERR_PARSE_ARGS')) usageError(error.message);
    throw error;
  }
}

const args = readOptions();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
/** The value of a numeric option, which must be a whole number when `whole`, and at least `min`. */
function numberOption(name, { min, whole }) {
  const value = Number(args[name]);
  const kind = whole ? 'a whole number' : 'a number';
  if (args[name].trim() === '' || !Number.isFinite(value) || (whole && !Number.isInteger(value)) || value < min) usageError(`--${name}: ${kind} of at least ${min}, not ${args[name]}`);
  return value;
}

const STUDIES = numberOption('studies', { min: 1, whole: true });
const IN_BATCH = Math.min(STUDIES, args.batch === undefined ? Math.round(STUDIES / 3) : numberOption('batch', { min: 0, whole: true }));
const FAULTS = args.faults.split(',').filter(Boolean);
const TIMEOUT_MS = numberOption('timeout', { min: 1, whole: false }) * 1000;
const BURST = numberOption('burst', { min: 1, whole: true });
const INTERVAL_MS = numberOption('interval', { min: 0, whole: false }) * 1000;
const OUTPUT = path.resolve(args.out);
const KNOWN_FAULTS = [...ALL_FAULTS, ...OPT_IN_FAULTS];
for (const fault of FAULTS) if (!KNOWN_FAULTS.includes(fault)) usageError(`--faults: unknown fault ${fault} (known: ${KNOWN_FAULTS.join(', ')})`);
if (!['always', 'everysec', 'no'].includes(args.appendfsync)) usageError(`--appendfsync: always, everysec or no, not ${args.appendfsync}`);

/**
 * When each fault strikes, in seconds after the first submission, all within the submissions (15 bursts
 * 6 s apart by default); a fault waits for the previous one to recover, and for work to meet (whenBusy).
 */
const SCHEDULE = [
  { at: 8, fault: 'worker-kill' },
  { at: 12, fault: 'redis-kill' },
  { at: 18, fault: 'api-kill' },
  { at: 28, fault: 'redis-restart' },
  { at: 32, fault: 'redis-kill' },
  { at: 40, fault: 'promote' },
  { at: 48, fault: 'worker-term' },
  { at: 52, fault: 'redis-kill' },
  { at: 58, fault: 'api-kill' },
  { at: 66, fault: 's3-restart' },
  { at: 82, fault: 'api-kill' },
].filter(({ fault }) => FAULTS.includes(fault));
const REDIS_DOWN_MS = 5000;
const S3_DOWN_MS = 10_000;
const WORKERS = 2;
const TASK_PROMOTED = 'tumor-binary';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round1 = (x) => Math.round(x * 10) / 10;
const loadAtStart = os.loadavg().map((load) => Math.round(load * 100) / 100);
// Node 20 is supported; the SDK's notice about its future releases would print at the promotion.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// ---------------------------------------------------------------------------------------------
// The system under test

/** A redis-server with its append-only file under `dir`, on `port`; resolves once it answers PING. */
async function startRedis(port, dir, log) {
  const options = ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', args.appendfsync, '--dir', dir, '--save', ''];
  const child = spawn('redis-server', options, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk) => log.write(chunk));
  child.stderr.on('data', (chunk) => log.write(chunk));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `redis://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
    if (await pingRedis(url, 1000).then(() => true, () => false)) break;
    if (attempt > 300) throw new Error(`redis-server on port ${port} did not answer`);
    await sleep(100);
  }
  const running = () => child.exitCode === null && child.signalCode === null;
  return { exited, running, kill: async (signal) => (running() && child.kill(signal), exited), pid: child.pid };
}

/** The embedded s3rver in a process of its own, so that it can be killed as a storage server dies. */
function startS3(port, dir, log) {
  const script = `import { startEmbeddedS3 } from '@btd/shared';
const s3 = await startEmbeddedS3({ directory: process.argv[1], port: Number(process.argv[2]) });
console.log('s3 listening on ' + s3.endpoint);`;
  return startService('s3rver', { PATH: process.env.PATH }, 's3 listening', { log, argv: ['--input-type=module', '-e', script, dir, String(port)] });
}

class System {
  constructor(scratch) {
    this.scratch = scratch;
    this.prefix = `faults-${randomUUID().slice(0, 8)}`;
    this.key = randomBytes(24).toString('base64url');
    this.workers = [];
    this.workerIds = [];
    this.starts = [];
    this.logs = [];
  }

  log(name) {
    const stream = createWriteStream(path.join(this.scratch, 'logs', `${name}.log`), { flags: 'a' });
    this.logs.push(stream);
    return stream;
  }

  async start(webhookPort) {
    await mkdir(path.join(this.scratch, 'logs'), { recursive: true });
    await mkdir(path.join(this.scratch, 'redis'), { recursive: true });
    [this.redisPort, this.s3Port, this.apiPort] = [await freePort(), await freePort(), await freePort()];
    this.redisUrl = `redis://127.0.0.1:${this.redisPort}`;
    await this.startRedis();
    // The benchmark's own look at the queues: fails at once while Redis is away.
    this.watch = new Redis(this.redisUrl, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    this.watch.on('error', () => {});
    await this.startS3();
    this.env = {
      PATH: process.env.PATH,
      REDIS_URL: this.redisUrl,
      QUEUE_PREFIX: this.prefix,
      S3_ENDPOINT: `http://127.0.0.1:${this.s3Port}`,
      S3_BUCKET: 'faults',
      S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
      MODELS_DIR: path.join(ROOT, 'models'),
      TF_BACKEND: process.env.TF_BACKEND ?? '',
      LOG_LEVEL: 'info',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    this.apiEnv = {
      ...this.env,
      PORT: String(this.apiPort),
      HOST: '127.0.0.1',
      API_KEYS: `pacs:${this.key}`,
      ADMIN_CLIENTS: 'pacs',
      DATA_DIR: this.scratch,
      WEBHOOK_SECRET: randomBytes(24).toString('base64url'),
      WEBHOOK_ALLOWED_NETWORKS: '127.0.0.1',
    };
    this.url = `http://127.0.0.1:${this.apiPort}`;
    this.callbackUrl = `http://127.0.0.1:${webhookPort}/hooks/btd`;
    // The first worker seeds the registry with the bundled models (MODEL_SOURCE=registry, as npm start runs it).
    await this.startWorker(0);
    await Promise.all([this.startApi(), this.startWorker(1)]);
  }

  async startRedis() {
    this.redis = await startRedis(this.redisPort, path.join(this.scratch, 'redis'), this.log('redis'));
  }

  async startS3() {
    this.s3 = startS3(this.s3Port, path.join(this.scratch, 's3'), this.log('s3'));
    await this.s3.ready;
  }

  async startApi() {
    this.api = startService('services/api/dist/main.js', this.apiEnv, 'API listening', { log: this.log('api') });
    await this.api.ready;
  }

  /** Starts worker i under a name of its own per start (faults-1, faults-1.2, …), so that a dead one's jobs, still locked, are not taken for the new one's. */
  async startWorker(i) {
    this.starts[i] = (this.starts[i] ?? 0) + 1;
    this.workerIds[i] = `faults-${i + 1}${this.starts[i] > 1 ? `.${this.starts[i]}` : ''}`;
    this.workers[i] = startService('services/inference-worker/dist/main.js', { ...this.env, WORKER_ID: this.workerIds[i] }, 'inference worker ready', {
      log: this.log(`worker-${i + 1}`),
    });
    await this.workers[i].ready;
  }

  /** Stops everything: the services first (SIGTERM, then SIGKILL after 30 s), then s3rver and Redis. */
  async stop() {
    const services = [this.api, ...this.workers].filter(Boolean);
    const timer = setTimeout(() => services.forEach((service) => void service.kill('SIGKILL')), 30_000);
    await Promise.all(services.map((service) => service.stop()));
    clearTimeout(timer);
    await this.s3?.kill('SIGKILL');
    this.watch?.disconnect();
    await this.redis?.kill('SIGTERM');
    await Promise.all(this.logs.map((stream) => new Promise((resolve) => stream.end(resolve))));
  }
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver

/** Counts the webhooks received, per X-Btd-Delivery, answering 200 to each. */
function startWebhookReceiver() {
  const deliveries = new Map(); // delivery id → { event, id, times: [ms since the first submission] }
  let origin = Date.now();
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const deliveryId = request.headers['x-btd-delivery'] ?? '(none)';
      let body = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        // Counted all the same; a body that does not parse shows as an unknown delivery.
      }
      const entry = deliveries.get(deliveryId) ?? { event: body.event, id: body.study?.studyId ?? body.batch?.batchId, state: body.study?.state, times: [] };
      entry.times.push(Date.now() - origin);
      deliveries.set(deliveryId, entry);
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return {
    deliveries,
    startClock: (at) => (origin = at),
    listen: () => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port))),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// ---------------------------------------------------------------------------------------------
// The client, as a PACS integration

/** Answers a client retries: the API or Redis away, S3 away, or the first request with that key still at work. */
const retryable = (status, body) => status >= 500 || status === 408 || status === 429 || (status === 409 && /_in_progress$/.test(body?.error?.code ?? body?.code ?? ''));

class Client {
  constructor(system, deadline) {
    this.system = system;
    this.deadline = deadline;
    this.retries = { network: 0, status: {} };
    this.inFlight = 0;
    // When the last 202 came: a Redis kill strikes just after one, while its writes are the freshest.
    this.lastAcceptedAt = 0;
  }

  /** One request, retried on network errors and retryable answers, 0.5 s doubling to 8 s apart (or after its Retry-After), until the deadline. */
  async request(method, route, options = {}) {
    this.inFlight += 1;
    try {
      return await this.retried(method, route, options);
    } finally {
      this.inFlight -= 1;
    }
  }

  async retried(method, route, { body, contentType, idempotencyKey }) {
    for (let attempt = 0; ; attempt += 1) {
      const headers = { authorization: `Bearer ${this.system.key}`, ...(contentType ? { 'content-type': contentType } : {}), ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) };
      let status;
      let answer;
      let retryAfterMs = 0;
      try {
        const response = await fetch(`${this.system.url}${route}`, { method, headers, body, signal: AbortSignal.timeout(60_000) });
        status = response.status;
        const text = await response.text();
        try {
          answer = JSON.parse(text);
        } catch {
          answer = text;
        }
        if (status === 202) this.lastAcceptedAt = Date.now();
        if (!retryable(status, answer)) return { status, body: answer, attempts: attempt + 1 };
        retryAfterMs = Math.min(30, Number(response.headers.get('retry-after')) || 0) * 1000;
        this.retries.status[status] = (this.retries.status[status] ?? 0) + 1;
      } catch {
        this.retries.network += 1;
      }
      if (Date.now() > this.deadline) return { status: status ?? 0, body: answer ?? 'no answer before the deadline', attempts: attempt + 1 };
      await sleep(Math.max(retryAfterMs, Math.min(8000, 500 * 2 ** Math.min(attempt, 4)) * (0.75 + Math.random() / 2)));
    }
  }

  async json(method, route, payload, idempotencyKey) {
    return this.request(method, route, { body: payload === undefined ? undefined : JSON.stringify(payload), contentType: payload === undefined ? undefined : 'application/json', idempotencyKey });
  }

  /** Every study of the client, page by page. */
  async listStudies() {
    const items = [];
    for (let offset = 0; ; offset += 500) {
      const page = await this.request('GET', `/v1/studies?limit=500&offset=${offset}`);
      if (page.status !== 200) throw new Error(`GET /v1/studies answered ${page.status}`);
      items.push(...page.body.items);
      if (!page.body.next) return items;
    }
  }
}

/** Up to `count` Br35H scans as stored (JPEG files of many sizes), half with a tumour, spread over each folder. */
async function scans(dir, count) {
  if (!existsSync(dir)) throw new Error(`no Br35H scans at ${dir}: pass --data`);
  const folder = async (name) => (await readdir(path.join(dir, name))).filter((file) => /\.jpe?g$/i.test(file)).sort().map((file) => path.join(dir, name, file));
  const spread = (list, n) => Array.from({ length: n }, (_, i) => list[Math.floor((i * list.length) / n)]);
  const files = [...spread(await folder('yes'), Math.ceil(count / 2)), ...spread(await folder('no'), Math.floor(count / 2))];
  return Promise.all(files.map(async (file) => ({ name: path.relative(dir, file), bytes: await readFile(file) })));
}

/** Submits every study, one every INTERVAL_MS, those of the batch into it; resolves with what each submission got. */
async function submitAll(client, system, images, runId) {
  const submissions = images.map((image, i) => ({ i, key: `${runId}-study-${i}`, externalId: `FAULTS-${runId}-${i}`, image: image.name, inBatch: false }));
  // IN_BATCH of them in the batch, spread over the run.
  for (let j = 0; j < IN_BATCH; j += 1) submissions[Math.floor((j * STUDIES) / IN_BATCH)].inBatch = true;
  const batch = IN_BATCH > 0 ? await client.json('POST', '/v1/batches', { externalId: `FAULTS-${runId}-batch`, callbackUrl: system.callbackUrl }, `${runId}-batch`) : undefined;
  if (batch && batch.status !== 201) throw new Error(`POST /v1/batches answered ${batch.status}: ${JSON.stringify(batch.body)}`);
  const batchId = batch?.body.batchId;
  const pending = [];
  for (const submission of submissions) {
    if (submission.i > 0 && submission.i % BURST === 0) await sleep(INTERVAL_MS);
    const { body, contentType } = studyUploadBody(images[submission.i].bytes, 'image/jpeg', { externalId: submission.externalId, callbackUrl: system.callbackUrl });
    const route = submission.inBatch ? `/v1/batches/${batchId}/studies` : '/v1/studies';
    submission.submittedAt = Date.now();
    pending.push(
      client.request('POST', route, { body, contentType, idempotencyKey: submission.key }).then((answer) => {
        submission.status = answer.status;
        submission.answeredAt = Date.now();
        submission.attempts = answer.attempts;
        submission.studyId = answer.body?.studyId;
        if (answer.status !== 202) submission.error = answer.body;
      }),
    );
  }
  await Promise.all(pending);
  let closed;
  if (batchId) closed = await client.json('POST', `/v1/batches/${batchId}/close`);
  return { submissions, batchId, batchClosed: closed?.status === 200 };
}

// ---------------------------------------------------------------------------------------------
// The faults

/** One queue's jobs by state, and how many active ones each worker holds a live lock on (a dead worker's wait to be found stalled). */
async function queueState(redis, prefix, name) {
  const key = (part) => `${prefix}:${name}:${part}`;
  const [waiting, prioritized, active, delayed] = await Promise.all([redis.llen(key('wait')), redis.zcard(key('prioritized')), redis.lrange(key('active'), 0, -1), redis.zcard(key('delayed'))]);
  const holders = {};
  for (const id of active) {
    const [locked, worker] = await Promise.all([redis.exists(key(`${id}:lock`)), redis.hget(key(id), 'pb')]);
    if (locked) holders[worker ?? '?'] = (holders[worker ?? '?'] ?? 0) + 1;
  }
  return { waiting: waiting + prioritized, active: active.length, delayed, holders };
}

/** What is in flight: the client's requests and each queue's jobs, read from Redis (null while Redis is away). */
async function inFlight(system, client) {
  const queues = await Promise.all(['inference', 'results', 'webhooks'].map((name) => queueState(system.watch, system.prefix, name))).catch(() => null);
  return { requests: client.inFlight, inference: queues?.[0] ?? null, results: queues?.[1] ?? null, webhooks: queues?.[2] ?? null };
}

/** In flight, in a few words: requests, and per queue jobs waiting and active. */
function describeInFlight(now) {
  const holders = (state) => Object.entries(state.holders).map(([id, n]) => `${id}: ${n}`).join(', ');
  const queue = (name) => (now[name] ? `${name} ${now[name].waiting} waiting, ${now[name].active} active${name === 'inference' ? ` (locked by ${holders(now[name]) || 'none'})` : ''}` : `${name} ?`);
  return `${now.requests} requests, ${['inference', 'results', 'webhooks'].map(queue).join(', ')}`;
}

/** The index of the running worker holding the most inference jobs, or -1 when none holds any. */
function busiestWorker(now, system) {
  const held = system.workerIds.map((id) => now.inference?.holders[id] ?? 0);
  const most = Math.max(...held);
  return most > 0 ? held.indexOf(most) : -1;
}

/**
 * Waits up to 20 s for the work a fault should meet: a worker fault for a worker with a job in hand,
 * an API kill for a request of the client's under way. Resolves with what was in flight then.
 */
async function whenBusy(fault, system, client) {
  const since = Date.now();
  const until = since + 20_000;
  for (;;) {
    if (fault === 'redis-kill') {
      // Within 20 ms of a submission answered 202 (polled every 5 ms), its burst's others under way; the queues are read once Redis is back.
      const sinceAccepted = Date.now() - client.lastAcceptedAt;
      if ((client.lastAcceptedAt > since && sinceAccepted <= 20) || Date.now() > until) return { requests: client.inFlight, msAfterLast202: sinceAccepted };
      await sleep(5);
      continue;
    }
    if (fault === 'api-kill') {
      // The queues are read once the API is dead, so that the request is still under way when it dies.
      if (client.inFlight > 0 || Date.now() > until) return { requests: client.inFlight };
      await sleep(10);
      continue;
    }
    const now = await inFlight(system, client);
    if (!fault.startsWith('worker-') || busiestWorker(now, system) >= 0 || Date.now() > until) return now;
    await sleep(100);
  }
}

async function runFault(fault, system, client, log) {
  const inFlightAtStrike = await whenBusy(fault, system, client);
  const started = Date.now();
  const entry = { fault, startedAt: new Date(started).toISOString(), inFlightAtStrike };
  if (fault === 'worker-kill' || fault === 'worker-term') {
    const busiest = busiestWorker(inFlightAtStrike, system);
    const i = busiest >= 0 ? busiest : fault === 'worker-kill' ? 0 : 1;
    const id = system.workerIds[i];
    entry.jobsInHand = inFlightAtStrike.inference?.holders[id] ?? 0;
    const signal = fault === 'worker-kill' ? 'SIGKILL' : 'SIGTERM';
    const exit = await system.workers[i].kill(signal);
    entry.detail = `worker ${id}: ${signal} with ${entry.jobsInHand} jobs in hand, exited ${exit.signal ?? `with code ${exit.code}`} after ${round1((Date.now() - started) / 1000)} s; restarted`;
    await system.startWorker(i);
  } else if (fault === 'api-kill') {
    await system.api.kill('SIGKILL');
    Object.assign(inFlightAtStrike, { ...(await inFlight(system, client)), requests: inFlightAtStrike.requests });
    entry.detail = 'API: SIGKILL; restarted at once';
    await system.startApi();
  } else if (fault === 'redis-kill') {
    // SIGKILL: no SHUTDOWN, so no last write or fsync of the append-only file; as a crash, an OOM kill or `docker kill`.
    await system.redis.kill('SIGKILL');
    const down = Date.now();
    await system.startRedis();
    // The benchmark's own connection takes a moment to come back.
    let after = await inFlight(system, client);
    for (let tries = 0; after.inference === null && tries < 50; tries += 1) after = await sleep(100).then(() => inFlight(system, client));
    Object.assign(inFlightAtStrike, { ...after, requests: inFlightAtStrike.requests });
    entry.detail = `Redis: SIGKILL ${inFlightAtStrike.msAfterLast202} ms after a 202 (appendfsync ${args.appendfsync}), restarted at once on its append-only file, answering after ${round1((Date.now() - down) / 1000)} s`;
  } else if (fault === 'redis-restart') {
    // SIGTERM is Redis's SHUTDOWN: the append-only file is flushed, as a Redis restarted by its supervisor does.
    await system.redis.kill('SIGTERM');
    const down = Date.now();
    await sleep(REDIS_DOWN_MS);
    await system.startRedis();
    entry.detail = `Redis: SHUTDOWN (SIGTERM), down ${round1((Date.now() - down) / 1000)} s, restarted on its append-only file`;
  } else if (fault === 's3-restart') {
    await system.s3.kill('SIGKILL');
    const down = Date.now();
    await sleep(S3_DOWN_MS);
    await system.startS3();
    entry.detail = `s3rver: SIGKILL, down ${round1((Date.now() - down) / 1000)} s, restarted on its directory`;
  } else if (fault === 'promote') {
    entry.detail = await promote(system);
  }
  entry.recoveredAt = new Date().toISOString();
  entry.seconds = round1((Date.now() - started) / 1000);
  log(`fault ${fault}: ${entry.detail} (${entry.seconds} s; in flight: ${describeInFlight(inFlightAtStrike)})`);
  return entry;
}

/** Publishes the served tumor-binary weights as a new version and promotes it through the API, as an operator does. */
async function promote(system) {
  const redis = new Redis(system.redisUrl, { maxRetriesPerRequest: 3 });
  const store = new ObjectStore({
    s3Endpoint: system.env.S3_ENDPOINT,
    s3Bucket: system.env.S3_BUCKET,
    s3Region: 'us-east-1',
    s3AccessKeyId: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    s3SecretAccessKey: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    s3ForcePathStyle: true,
  });
  try {
    const registry = new ModelRegistry({ store, redis, namespace: system.prefix });
    const published = await registry.publish(TASK_PROMOTED, await republished(system.env.MODELS_DIR, TASK_PROMOTED));
    const client = new Client(system, Date.now() + 120_000);
    const answer = await client.json('POST', `/v1/models/${TASK_PROMOTED}/promote`, { version: published.version, reason: 'fault-injection benchmark' });
    if (answer.status !== 200) throw new Error(`promotion answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return `${TASK_PROMOTED} ${published.version} published and promoted through the API`;
  } finally {
    store.close();
    redis.disconnect();
  }
}

async function runSchedule(system, client, origin, log, stopped) {
  const done = [];
  for (const { at, fault } of SCHEDULE) {
    await sleep(origin + at * 1000 - Date.now());
    if (stopped()) break;
    try {
      const entry = await runFault(fault, system, client, log);
      done.push({ offsetSeconds: round1((Date.parse(entry.startedAt) - origin) / 1000), ...entry });
    } catch (error) {
      done.push({ offsetSeconds: round1((Date.now() - origin) / 1000), fault, error: error.message });
      log(`fault ${fault} could not be run: ${error.message}`);
    }
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// Waiting and checking

const ACTIVE_STATES = ['waiting', 'prioritized', 'active', 'delayed'];

async function queueCounts(client) {
  const answer = await client.request('GET', '/v1/admin/queues');
  if (answer.status !== 200) throw new Error(`GET /v1/admin/queues answered ${answer.status}`);
  return Object.fromEntries(answer.body.queues.map((queue) => [queue.name, queue.counts]));
}

const unfinishedJobs = (counts) => Object.values(counts).reduce((sum, queue) => sum + ACTIVE_STATES.reduce((n, state) => n + (queue[state] ?? 0), 0), 0);

/** Polls until every accepted study has finished, the batch is done, every webhook has come and no queue holds a job, or the deadline. */
async function waitForAll(client, accepted, batchId, receiver, deadline, log) {
  let last = '';
  for (;;) {
    const studies = await client.listStudies().catch(() => undefined);
    const counts = await queueCounts(client).catch(() => undefined);
    const batch = batchId ? await client.request('GET', `/v1/batches/${batchId}?limit=1`).catch(() => undefined) : undefined;
    if (studies && counts) {
      const finished = studies.filter((study) => study.state === 'done' || study.state === 'failed').length;
      const hooks = [...receiver.deliveries.values()].filter((entry) => entry.event === 'study.completed').length;
      const batchDone = !batchId || batch?.body?.state === 'done';
      const batchHook = !batchId || receiver.deliveries.has(`batch-${batchId}`);
      const jobs = unfinishedJobs(counts);
      const line = `finished ${finished}/${accepted}, webhooks ${hooks}, batch ${batch?.body?.state ?? '-'}, jobs in queues ${jobs}`;
      if (line !== last) log(line);
      last = line;
      if (finished >= accepted && hooks >= accepted && batchDone && batchHook && jobs === 0) return true;
    }
    if (Date.now() > deadline) return false;
    await sleep(3000);
  }
}

/** Everything the run found, from the API's own records, the queues and the webhooks received. */
async function check(client, { submissions, batchId, batchClosed }, receiver) {
  const studies = await client.listStudies();
  const byExternalId = new Map();
  for (const study of studies) byExternalId.set(study.externalId, [...(byExternalId.get(study.externalId) ?? []), study]);
  const accepted = submissions.filter((submission) => submission.status === 202);
  const known = new Set(submissions.map((submission) => submission.externalId));
  // A study listed under no submission's externalId, or a second one under one, is a duplicate.
  const duplicates = studies.length - [...byExternalId.keys()].filter((id) => known.has(id)).length;
  // A submission whose answer named another study than the one the API lists for its externalId.
  const mismatched = accepted.filter((submission) => byExternalId.get(submission.externalId)?.[0]?.studyId !== submission.studyId).length;
  const missing = submissions.filter((submission) => !byExternalId.has(submission.externalId)).length;
  // Answered 202, yet no study under its externalId afterwards: an acknowledged write the store lost.
  const acceptedUnknown = accepted.filter((submission) => !byExternalId.has(submission.externalId)).length;
  const state = (name) => studies.filter((study) => study.state === name).length;
  const studyHooks = studies.map((study) => receiver.deliveries.get(`study-${study.studyId}`)?.times.length ?? 0);
  const unknownHooks = [...receiver.deliveries.entries()].filter(([id]) => !id.startsWith('study-') && !id.startsWith('batch-')).length;
  const batch = batchId ? (await client.request('GET', `/v1/batches/${batchId}?limit=1`)).body : undefined;
  const batchHooks = batchId ? (receiver.deliveries.get(`batch-${batchId}`)?.times.length ?? 0) : null;
  const queues = await queueCounts(client);
  return {
    studies: {
      submitted: submissions.length,
      accepted: accepted.length,
      refused: submissions.filter((submission) => submission.status !== 202).map(({ externalId, status, error }) => ({ externalId, status, error })),
      listed: studies.length,
      done: state('done'),
      failed: state('failed'),
      unfinished: studies.length - state('done') - state('failed'),
      missing,
      acceptedUnknown,
      duplicates,
      answerNamedAnotherStudy: mismatched,
      attempts: { total: submissions.reduce((sum, submission) => sum + (submission.attempts ?? 0), 0), retried: submissions.filter((submission) => submission.attempts > 1).length },
      failedStudies: studies.filter((study) => study.state === 'failed').map((study) => study.studyId),
    },
    batch: batchId
      ? { batchId, closed: batchClosed, state: batch?.state, counts: batch?.counts, expected: submissions.filter((submission) => submission.inBatch).length, webhooks: batchHooks }
      : null,
    webhooks: {
      studiesWithOne: studyHooks.filter((n) => n === 1).length,
      studiesWithNone: studyHooks.filter((n) => n === 0).length,
      duplicateDeliveries: studyHooks.reduce((sum, n) => sum + Math.max(0, n - 1), 0) + Math.max(0, (batchHooks ?? 1) - 1),
      duplicated: [...receiver.deliveries.entries()].filter(([, entry]) => entry.times.length > 1).map(([id, entry]) => ({ deliveryId: id, secondsAfterStart: entry.times.map((t) => round1(t / 1000)) })),
      unknown: unknownHooks,
      total: [...receiver.deliveries.values()].reduce((sum, entry) => sum + entry.times.length, 0),
    },
    queues,
  };
}

/** How long submissions took to be answered 202 (those answered at the first attempt, and all), and how many were accepted per second. */
function submissionTimes(submissions, origin) {
  const accepted = submissions.filter((submission) => submission.status === 202);
  const times = (list) => {
    const ms = list.map((submission) => submission.answeredAt - submission.submittedAt);
    return { n: ms.length, p50: quantile(ms, 0.5), p95: quantile(ms, 0.95), max: quantile(ms, 1) };
  };
  const lastAnswer = Math.max(...accepted.map((submission) => submission.answeredAt));
  return {
    firstAttemptMs: times(accepted.filter((submission) => submission.attempts === 1)),
    allMs: times(accepted),
    acceptedPerSecond: accepted.length > 0 ? Math.round((accepted.length / ((lastAnswer - origin) / 1000)) * 100) / 100 : 0,
  };
}

/** Lines each service logged at error (50) and fatal (60), by message: where to look after a run. */
async function loggedErrors(scratch) {
  const out = {};
  for (const file of await readdir(path.join(scratch, 'logs'))) {
    const messages = {};
    for (const line of (await readFile(path.join(scratch, 'logs', file), 'utf8')).split('\n')) {
      if (!/"level":(50|60)/.test(line)) continue;
      const message = /"msg":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1] ?? line.slice(0, 120);
      messages[message] = (messages[message] ?? 0) + 1;
    }
    if (Object.keys(messages).length > 0) out[file.replace(/\.log$/, '')] = messages;
  }
  return out;
}

/** What counts as lost or duplicated; empty when nothing was. */
function problems(found, finishedInTime) {
  const out = [];
  const { studies, batch, webhooks, queues } = found;
  if (!finishedInTime) out.push('not everything finished before the deadline');
  if (studies.refused.length > 0) out.push(`${studies.refused.length} submissions not accepted`);
  if (studies.missing > 0) out.push(`${studies.missing} submissions without a study`);
  if (studies.acceptedUnknown > 0) out.push(`${studies.acceptedUnknown} studies answered 202 but unknown afterwards`);
  if (studies.duplicates > 0) out.push(`${studies.duplicates} duplicate studies`);
  if (studies.answerNamedAnotherStudy > 0) out.push(`${studies.answerNamedAnotherStudy} answers naming another study than the one listed`);
  if (studies.failed > 0) out.push(`${studies.failed} studies failed`);
  if (studies.unfinished > 0) out.push(`${studies.unfinished} studies unfinished`);
  if (batch && (batch.state !== 'done' || batch.counts?.total !== batch.expected || batch.counts?.done !== batch.expected)) out.push(`batch ${batch.state}, counts ${JSON.stringify(batch.counts)}, ${batch.expected} expected`);
  if (batch && batch.webhooks !== 1) out.push(`batch webhook received ${batch.webhooks} times`);
  if (webhooks.studiesWithNone > 0) out.push(`${webhooks.studiesWithNone} studies without a webhook`);
  if (webhooks.duplicateDeliveries > 0) out.push(`${webhooks.duplicateDeliveries} duplicate webhook deliveries`);
  if (webhooks.unknown > 0) out.push(`${webhooks.unknown} webhooks of no study or batch`);
  for (const [name, counts] of Object.entries(queues)) {
    const left = ACTIVE_STATES.reduce((n, state) => n + (counts[state] ?? 0), 0);
    if (left > 0) out.push(`${left} jobs left in queue ${name}`);
    if ((counts.failed ?? 0) > 0) out.push(`${counts.failed} failed jobs in queue ${name}`);
  }
  return out;
}

function printTable(report) {
  const { studies, batch, webhooks, queues } = report.found;
  const rows = [
    ['studies submitted / accepted', `${studies.submitted} / ${studies.accepted}`],
    ['studies done / failed / unfinished', `${studies.done} / ${studies.failed} / ${studies.unfinished}`],
    ['studies missing / duplicate (per Idempotency-Key and externalId)', `${studies.missing} / ${studies.duplicates}`],
    ['studies answered 202 but unknown afterwards', String(studies.acceptedUnknown)],
    ['submissions retried / requests in all', `${studies.attempts.retried} / ${studies.attempts.total}`],
    ['submission to 202, first attempt: p50 / p95 / max (n)', `${report.submissions.firstAttemptMs.p50} / ${report.submissions.firstAttemptMs.p95} / ${report.submissions.firstAttemptMs.max} ms (${report.submissions.firstAttemptMs.n})`],
    ['submission to 202, retries included: p50 / p95 / max', `${report.submissions.allMs.p50} / ${report.submissions.allMs.p95} / ${report.submissions.allMs.max} ms`],
    ['studies accepted per second, first submission to last 202', String(report.submissions.acceptedPerSecond)],
    ['client retries: network errors / by status', `${report.client.network} / ${JSON.stringify(report.client.status)}`],
    ...(batch ? [['batch state / total / done / failed (expected)', `${batch.state} / ${batch.counts?.total} / ${batch.counts?.done} / ${batch.counts?.failed} (${batch.expected})`], ['batch webhooks', String(batch.webhooks)]] : []),
    ['study webhooks exactly once / none / duplicate deliveries', `${webhooks.studiesWithOne} / ${webhooks.studiesWithNone} / ${webhooks.duplicateDeliveries}`],
    ...Object.entries(queues).map(([name, counts]) => [`queue ${name}: waiting / active / delayed / failed / completed`, `${(counts.waiting ?? 0) + (counts.prioritized ?? 0)} / ${counts.active ?? 0} / ${counts.delayed ?? 0} / ${counts.failed ?? 0} / ${counts.completed ?? 0}`]),
    ['wall time, first submission to all finished after the last fault', `${report.wallSeconds} s`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  console.log('');
  for (const [label, value] of rows) console.log(`${label.padEnd(width)}  ${value}`);
  console.log('\nfaults (seconds after the first submission):');
  for (const fault of report.faults) console.log(`  ${String(fault.offsetSeconds ?? '-').padStart(6)}  ${fault.fault.padEnd(13)} ${fault.error ? `NOT RUN: ${fault.error}` : `${fault.detail} (${fault.seconds} s)\n${' '.repeat(24)}in flight: ${describeInFlight(fault.inFlightAtStrike)}`}`);
  for (const [service, messages] of Object.entries(report.loggedErrors)) {
    console.log(`${service} logged at error or fatal: ${Object.entries(messages).map(([message, n]) => `${n}× ${message}`).join('; ')}`);
  }
  console.log(report.problems.length === 0 ? '\nnothing lost, nothing duplicated' : `\nPROBLEMS:\n${report.problems.map((problem) => `  - ${problem}`).join('\n')}`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'btd-bench-faults-'));
  const system = new System(scratch);
  const receiver = startWebhookReceiver();
  const started = Date.now();
  const log = (line) => console.log(`[${round1((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  let stopping = false;
  const cleanUp = async () => {
    await system.stop().catch((error) => console.error(`stopping the system: ${error.message}`));
    await receiver.close();
    if (args.keep) console.log(`kept ${scratch}`);
    else await rm(scratch, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      console.log(`\n${signal}: stopping everything`);
      void cleanUp().finally(() => process.exit(130));
    });
  }
  let exitCode = 1;
  try {
    const images = await scans(args.data, STUDIES);
    const webhookPort = await receiver.listen();
    log(`starting Redis, s3rver, the API and ${WORKERS} workers under ${scratch}`);
    await system.start(webhookPort);
    log('system up; submitting');
    const origin = Date.now();
    receiver.startClock(origin);
    const deadline = origin + TIMEOUT_MS;
    const client = new Client(system, deadline);
    const runId = randomUUID().slice(0, 8);
    const [submitted, faults] = await Promise.all([submitAll(client, system, images, runId), runSchedule(system, client, origin, log, () => stopping)]);
    const accepted = submitted.submissions.filter((submission) => submission.status === 202).length;
    log(`submitted: ${accepted} of ${STUDIES} accepted${submitted.batchId ? `, batch ${submitted.batchClosed ? 'closed' : 'NOT closed'}` : ''}`);
    const finishedInTime = await waitForAll(client, accepted, submitted.batchId, receiver, deadline, log);
    const wallSeconds = round1((Date.now() - origin) / 1000);
    // Late duplicates of webhooks (a delivery taken up again after its API process died) would come within a stall check.
    log('all finished; watching 10 s more for late webhooks');
    await sleep(10_000);
    const found = await check(client, submitted, receiver);
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      // Other work on the machine slows every service here; the 1-minute load average says how much.
      loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map((load) => Math.round(load * 100) / 100) },
      setup: {
        studies: STUDIES,
        inBatch: IN_BATCH,
        images: `Br35H scans as stored (JPEG), half tumour, from ${path.relative(ROOT, args.data)}`,
        workers: WORKERS,
        submissions: `bursts of ${BURST}, ${INTERVAL_MS / 1000} s apart`,
        redis: `redis-server --appendonly yes --appendfsync ${args.appendfsync}, its own port and directory`,
        s3: 'embedded s3rver in a process of its own',
      },
      wallSeconds,
      finishedInTime,
      faults,
      client: client.retries,
      submissions: submissionTimes(submitted.submissions, origin),
      found,
      loggedErrors: await loggedErrors(scratch),
    };
    report.problems = problems(found, finishedInTime);
    printTable(report);
    await writeFile(OUTPUT, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(process.cwd(), OUTPUT)}`);
    exitCode = report.problems.length === 0 ? 0 : 1;
  } catch (error) {
    console.error(error);
  } finally {
    if (!stopping) await cleanUp();
  }
  process.exit(exitCode);
}

await main();
