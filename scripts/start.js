#!/usr/bin/env node
// Brings the whole system up on one machine: embedded S3 (unless S3_ENDPOINT is set), a check
// that Redis answers, the API, N inference workers and the trainer, as child processes.
// Ctrl-C (or SIGTERM) stops them all cleanly. Runs after `tsc -b` (see `npm start`).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CONFIG_EXIT_CODE, EMBEDDED_S3_CREDENTIALS, isRedisNotReady, isServiceReady, maskRedisUrl, pingRedis, redisRefusal, startEmbeddedS3 } from '@btd/shared';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SERVICES = {
  api: path.join(ROOT, 'services/api/dist/main.js'),
  worker: path.join(ROOT, 'services/inference-worker/dist/main.js'),
  trainer: path.join(ROOT, 'services/trainer/dist/main.js'),
};
const EMBEDDED_S3_PORT = 4569; // s3rver's customary port
const STOP_TIMEOUT_MS = 45_000; // above the services' own SHUTDOWN_TIMEOUT_MS defaults

const USAGE = `Usage: npm start -- [--workers N] [--no-trainer]

  --workers N    inference worker processes (default: WORKERS or 1; a lone worker on a
                 multi-core machine runs its models on a pool of threads, one per core,
                 unless WORKER_MODEL_THREADS says otherwise)
  --no-trainer   do not start the trainer service

Settings come from the environment (see .env.example): REDIS_URL, PORT, S3_ENDPOINT, ...`;

/** A path as the user would type it: relative when under the working directory, else absolute. */
function displayPath(file) {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

function readOptions() {
  const { values } = parseArgs({
    options: { workers: { type: 'string' }, 'no-trainer': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const workers = Number(values.workers ?? process.env.WORKERS ?? 1);
  if (!Number.isInteger(workers) || workers < 0 || workers > 64) fail(`--workers must be a whole number from 0 to 64 (got ${values.workers ?? process.env.WORKERS})`);
  return { workers, trainer: !values['no-trainer'] };
}

function fail(message) {
  console.error(`\n${message}\n`);
  process.exit(1);
}

// Redis is not started here: one that does not run fails at once with how to get one, one that refuses
// REDIS_URL's credentials exits as invalid configuration, and one still loading its dataset is waited for
// by the services themselves (REDIS_STARTUP_TIMEOUT_MS).
async function checkRedis(url) {
  try {
    await pingRedis(url, 3000);
  } catch (error) {
    const refusal = redisRefusal(error, url);
    if (refusal) {
      console.error(`\n${refusal.message}\n`);
      process.exit(CONFIG_EXIT_CODE);
    }
    if (isRedisNotReady(error)) {
      console.warn(`Redis at ${maskRedisUrl(url)} is not ready yet (${error.detail}); the services wait for it`);
      return;
    }
    fail(`${error.message}\nOn Debian/Ubuntu: sudo apt-get install redis-server (or run: docker run -p 6379:6379 redis:7).`);
  }
}

/** Starts s3rver under DATA_DIR/s3 unless an S3 endpoint is configured; returns the env to pass on. */
async function startStorage(env) {
  if (env.S3_ENDPOINT) return { storageEnv: {}, embedded: undefined, where: env.S3_ENDPOINT };
  const directory = path.join(env.DATA_DIR, 's3');
  const port = Number(env.EMBEDDED_S3_PORT ?? EMBEDDED_S3_PORT);
  const embedded = await startEmbeddedS3({ directory, port }).catch((error) => {
    if (error.code !== 'EADDRINUSE') throw error;
    console.warn(`port ${port} is taken; the embedded S3 server uses a free port instead`);
    return startEmbeddedS3({ directory, port: 0 });
  });
  const storageEnv = {
    S3_ENDPOINT: embedded.endpoint,
    S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
  };
  return { storageEnv, embedded, where: `${embedded.endpoint} (embedded, data in ${path.relative(process.cwd(), directory) || '.'})` };
}

/**
 * The bundled models, or (before any have been trained) untrained placeholders written under
 * DATA_DIR/models so the pipeline still runs end to end. Their verdicts mean nothing.
 */
async function modelsDirectory(env) {
  const bundled = env.MODELS_DIR ?? path.join(ROOT, 'models');
  const complete = (dir) => ['tumor-binary', 'tumor-type'].every((task) => existsSync(path.join(dir, task, 'manifest.json')));
  if (complete(bundled)) return bundled;
  const placeholder = path.join(env.DATA_DIR, 'models');
  if (!complete(placeholder)) {
    const { writeInitialArtifact } = await import('@btd/model');
    for (const task of ['tumor-binary', 'tumor-type']) {
      await writeInitialArtifact({ task, outDir: path.join(placeholder, task), version: 'untrained-placeholder' });
    }
  }
  console.warn(`\nWARNING: no trained models in ${bundled}: serving UNTRAINED placeholders from ${placeholder}.\nTheir verdicts are random. Train with \`npx btd train\` or set MODELS_DIR.\n`);
  return placeholder;
}

const children = new Map();
let stopping = false;

/**
 * Starts a service; `ready` settles once it says it is ready over its IPC channel (the workers and
 * the trainer, once their models are loaded and they take jobs), or false if it exits first.
 */
function launch(name, script, env) {
  // Own process group: Ctrl-C reaches only this script, which then stops each child once, in order.
  const child = spawn(process.execPath, [script], { env, stdio: ['inherit', 'inherit', 'inherit', 'ipc'], detached: true });
  children.set(name, child);
  const ready = new Promise((resolve) => {
    child.on('message', (message) => {
      if (isServiceReady(message)) resolve(true);
    });
    child.once('exit', () => resolve(false));
  });
  child.once('exit', (code, signal) => {
    children.delete(name);
    if (stopping) return;
    console.error(`\n${name} exited unexpectedly (${signal ?? `code ${code}`}); stopping everything.`);
    void stop(1);
  });
  return { child, ready };
}

/** Waits until the API answers /readyz (it listens once Redis and S3 have answered, and they still do). */
async function waitForApi(url, child) {
  while (child.exitCode === null && !stopping) {
    const ok = await fetch(`${url}/readyz`).then((response) => response.ok, () => false);
    if (ok) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

let embeddedS3;

async function stop(code) {
  if (stopping) return;
  stopping = true;
  console.log(`\nstopping ${[...children.keys()].join(', ') || 'nothing'} ...`);
  const exits = [...children.values()].map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of children.values()) child.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const [name, child] of children) {
      console.error(`${name} did not stop within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
      child.kill('SIGKILL');
    }
  }, STOP_TIMEOUT_MS);
  await Promise.all(exits);
  clearTimeout(timer);
  await embeddedS3?.close();
  console.log('stopped.');
  process.exit(code);
}

async function main() {
  const options = readOptions();
  const env = { ...process.env };
  env.REDIS_URL ??= 'redis://127.0.0.1:6379';
  env.PORT ??= '3000';
  env.DATA_DIR = path.resolve(env.DATA_DIR ?? path.join(ROOT, 'data'));
  // Node 20 is supported; the SDK's notice about its future releases would print once per process.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  await checkRedis(env.REDIS_URL);
  const storage = await startStorage(env);
  embeddedS3 = storage.embedded;
  const servicesEnv = { ...env, ...storage.storageEnv, MODELS_DIR: await modelsDirectory(env) };
  // A lone worker on a machine with cores to spare spreads each image's forward passes over a pool
  // of threads, one per core, unless told otherwise: lower latency, and more images per second.
  if (options.workers === 1 && availableParallelism() > 1) servicesEnv.WORKER_MODEL_THREADS ??= 'true';
  const threads = servicesEnv.WORKER_MODEL_THREADS === 'true' ? ' (the models on a thread per core)' : '';

  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => void stop(0));
  const api = launch('api', SERVICES.api, servicesEnv);
  const announcing = [];
  for (let i = 1; i <= options.workers; i += 1) {
    announcing.push(launch(`worker-${i}`, SERVICES.worker, { ...servicesEnv, WORKER_ID: `worker-${i}` }).ready);
  }
  if (options.trainer && existsSync(SERVICES.trainer)) announcing.push(launch('trainer', SERVICES.trainer, servicesEnv).ready);

  // Up means every service answers: the API its /readyz, each worker and the trainer that it is ready.
  const url = `http://localhost:${env.PORT}`;
  const ready = await Promise.all([waitForApi(url, api.child), ...announcing]);
  if (!ready.every(Boolean)) return;
  // The API prints a generated key once, when it creates it; later starts only say where it is.
  const keyFile = path.join(env.DATA_DIR, 'local-api-key');
  const configured = Boolean(env.API_KEYS || env.API_KEYS_FILE);
  const keys = configured ? 'as configured (API_KEYS / API_KEYS_FILE)' : `client "local", key in ${displayPath(keyFile)}`;
  // The key rides in the URL fragment, which the browser never sends; the page stores it per tab.
  const localKey = configured ? '' : await readFile(keyFile, 'utf8').then((text) => text.trim(), () => '');
  const page = localKey ? `${url}/#key=${encodeURIComponent(localKey)}` : `${url}/`;
  console.log(
    `\nbtd is up: ${url}  (upload page: ${page}, API docs: ${url}/docs)\n` +
      `  API keys: ${keys}\n  Redis:    ${maskRedisUrl(env.REDIS_URL)}\n  S3:       ${storage.where}\n  Workers:  ${options.workers}${threads}\n` +
      `Press Ctrl-C to stop.\n`,
  );
}

main().catch((error) => {
  console.error(error);
  void stop(1);
});
