import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from '@btd/shared';
import { REPO_ROOT, TEST_REDIS_URL, deleteKeysWithPrefix, freePort, sampleImages, slowLoadingDataset, uniquePrefix, useRedisServers, waitFor, writeTestModels } from './helpers/index.js';


let dataDir: string;
let modelsDir: string;
const prefix = uniquePrefix();

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'btd-start-'));
  modelsDir = await writeTestModels();
});

afterAll(async () => {
  const redis = new Redis(TEST_REDIS_URL);
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await rm(dataDir, { recursive: true, force: true });
  await rm(modelsDir, { recursive: true, force: true });
});

describe('npm start (scripts/start.js)', () => {
  // Four processes start on two cores: when the suite's other files load the machine (and on a
  // machine that runs the models 2–3 times slower than others), a start can take minutes, so the
  // deadlines are generous and one retry tells a slow start from a broken one.
  it('brings up embedded S3, the API and a worker, serves a study, and stops cleanly on SIGTERM', { retry: 1, timeout: 420_000 }, async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts/start.js'), '--workers', '1', '--no-trainer'], {
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL: TEST_REDIS_URL,
        QUEUE_PREFIX: prefix,
        PORT: String(port),
        EMBEDDED_S3_PORT: String(await freePort()),
        DATA_DIR: dataDir,
        MODELS_DIR: modelsDir,
        TF_BACKEND: 'wasm',
        // The worker's 'inference worker ready' line is logged at info.
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let bannerAt: number | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (bannerAt === undefined && output.includes('btd is up')) bannerAt = Date.now();
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => output.includes('btd is up'), { timeoutMs: 240_000, what: `the start banner in:\n${output}` });
      expect(output).toContain(`http://localhost:${port}`);
      expect(output).not.toContain('UNTRAINED');
      // Up means ready: the worker, which loads its models after the API answers, was ready before the
      // banner (its log line, written asynchronously, may reach the output after it; its time does not).
      const readyLine = await waitFor(() => output.split('\n').find((line) => line.includes('"msg":"inference worker ready"') && line.endsWith('}')), { timeoutMs: 60_000, what: 'the worker to log that it is ready' });
      expect((JSON.parse(readyLine) as { time: number }).time).toBeLessThanOrEqual(bannerAt as number);
      // A lone worker on a machine with cores to spare runs its models on a thread per core.
      expect(output.includes('the models on a thread per core')).toBe(availableParallelism() > 1);

      const key = (await readFile(path.join(dataDir, 'local-api-key'), 'utf8')).trim();
      const [file] = await sampleImages('br35h/yes', 1);
      const form = new FormData();
      form.append('priority', 'stat');
      form.append('file', new Blob([await readFile(file as string)], { type: 'image/jpeg' }), 'scan.jpg');
      const submitted = await fetch(`http://localhost:${port}/v1/studies`, { method: 'POST', body: form, headers: { authorization: `Bearer ${key}` } });
      expect(submitted.status).toBe(202);
      const { studyId } = (await submitted.json()) as { studyId: string };
      const study = await waitFor(async () => {
        const response = await fetch(`http://localhost:${port}/v1/studies/${studyId}`, { headers: { authorization: `Bearer ${key}` } });
        const body = (await response.json()) as { state: string };
        return body.state === 'done' ? body : undefined;
      }, { timeoutMs: 120_000, what: 'the study to be done' });
      expect(study.state).toBe('done');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output).toContain('stopped.');
  });

  const startRedis = useRedisServers();

  it('exits 78 before starting anything, naming REDIS_URL without its password, when Redis refuses the credentials', async () => {
    const redis = await startRedis({ args: ['--requirepass', 'right-password'] });
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts/start.js'), '--workers', '0', '--no-trainer'], {
      env: { PATH: process.env.PATH ?? '', REDIS_URL: `redis://:wrong-password@127.0.0.1:${redis.port}`, DATA_DIR: dataDir, MODELS_DIR: modelsDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    expect(code).toBe(78);
    expect(output).toContain(`REDIS_URL: Redis at redis://:***@127.0.0.1:${redis.port} refused the connection (WRONGPASS`);
    expect(output).not.toContain('wrong-password');
    expect(output).not.toContain('apt-get');
  });

  it('goes on with a Redis still loading its dataset, which the services wait for', { retry: 1, timeout: 420_000 }, async () => {
    // About 30 s of loading: a start script slowed by a busy machine must still find Redis loading.
    const dataset = await slowLoadingDataset(10_000, 3000);
    try {
      const redis = await startRedis({ args: dataset.args });
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts/start.js'), '--workers', '0', '--no-trainer'], {
        env: { PATH: process.env.PATH ?? '', REDIS_URL: redis.url, PORT: String(await freePort()), EMBEDDED_S3_PORT: String(await freePort()), DATA_DIR: dataDir, MODELS_DIR: modelsDir, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        await waitFor(() => output.includes('btd is up') || child.exitCode !== null, { timeoutMs: 240_000, what: `the start banner in:\n${output}` });
        expect(output).toContain(`Redis at ${redis.url} is not ready yet (LOADING`);
        expect(output).toContain('btd is up');
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    } finally {
      await dataset.remove();
    }
  });
});
