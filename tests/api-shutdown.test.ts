import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { mriSlices } from './api-fixtures.js';
import { useApiHarness } from './api-harness.js';
import { REPO_ROOT, TEST_REDIS_URL, deleteKeysWithPrefix, freePort, redisWaitLines, spawnService, uniquePrefix, useRedisServers, waitFor } from './helpers/index.js';

const harness = useApiHarness();

/** Starts a multipart upload and sends its last bytes only when `finish` is called. */
function slowUpload(url: URL, key: string, bytes: Uint8Array) {
  const boundary = 'btd-slow-upload';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = Buffer.concat([head, bytes, tail]);
  const split = body.length - 100;
  const req = request(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length },
  });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
  });
  req.write(body.subarray(0, split));
  return { answer, finish: () => req.end(body.subarray(split)) };
}

describe('graceful shutdown', () => {
  it('finishes an upload in flight when shutdown starts, and refuses new connections', async () => {
    const env = harness.env;
    const [slice] = mriSlices('yes', 1);
    const upload = slowUpload(new URL('/v1/studies', env.url), env.keys.alice, slice!.bytes);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the request is being read
    const closing = env.api.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(fetch(`${env.url}/healthz`)).rejects.toThrow();
    upload.finish();
    const answer = await upload.answer;
    await closing;
    expect(answer.status).toBe(202);
    const { studyId, images } = JSON.parse(answer.body) as { studyId: string; images: { imageId: string }[] };
    expect(await env.objectKeys()).toEqual([`originals/alice/${studyId}/${images[0]!.imageId}`]);
  });

  it('refuses to start on an invalid setting, naming it, with the exit code of invalid configuration', async () => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'services/api/dist/main.js')], {
      env: { PATH: process.env.PATH ?? '', REDIS_URL: TEST_REDIS_URL, PORT: 'eighty' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const errors: Buffer[] = [];
    child.stderr!.on('data', (chunk: Buffer) => errors.push(chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    expect(code).toBe(78);
    expect(Buffer.concat(errors).toString()).toContain('PORT');
  });

  it('stops on SIGTERM with exit code 0 after draining, as a process', async () => {
    const prefix = uniquePrefix();
    const dataDir = await mkdtemp(path.join(tmpdir(), 'btd-api-main-'));
    const s3Env = harness.s3.env(harness.s3.bucketOptions());
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'services/api/dist/main.js')], {
      env: { PATH: process.env.PATH ?? '', REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, ...s3Env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
    child.stderr!.on('data', () => {});
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const listening = () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${lines.join('\n')}`);
        return lines.some((line) => line.includes('"API listening"'));
      };
      // Generous: a cold start imports Fastify, sharp, BullMQ and the AWS SDK, slow on a busy CI machine.
      await waitFor(listening, { timeoutMs: 90_000, what: 'the API to listen' });
      // No keys were configured: a local key was created and shown once.
      expect(lines.join('\n')).toContain('created an API key for client "local"');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines.some((line) => line.includes('"shutdown complete"'))).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
      await deleteKeysWithPrefix(harness.env.redis, prefix);
    }
  });
});

describe('an API process started before Redis', () => {
  const startRedis = useRedisServers();
  /** The API's main on a Redis at `redisUrl`, with a data folder of its own. */
  async function startApiProcess(redisUrl: string) {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'btd-api-main-'));
    const s3Env = harness.s3.env(harness.s3.bucketOptions());
    const env = { REDIS_URL: redisUrl, QUEUE_PREFIX: uniquePrefix(), ...s3Env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir };
    const api = spawnService(path.join(REPO_ROOT, 'services/api/dist/main.js'), env, 'API listening');
    const close = async () => {
      api.child.kill('SIGKILL');
      await api.exited;
      await rm(dataDir, { recursive: true, force: true });
    };
    return { ...api, close };
  }

  it('stops on SIGTERM while it waits, with exit code 0', async () => {
    const api = await startApiProcess(`redis://127.0.0.1:${await freePort()}`);
    try {
      // Generous: a cold start imports Fastify, sharp, BullMQ and the AWS SDK, slow on a busy CI machine.
      await waitFor(() => redisWaitLines(api.logs).length >= 2, { timeoutMs: 90_000, what: 'the API to wait for Redis twice' });
      api.child.kill('SIGTERM');
      expect(await api.exited).toEqual({ code: 0, signal: null });
      expect(api.logs.some((line) => line.includes('"shutdown complete"'))).toBe(true);
    } finally {
      await api.close();
    }
  });

  it('exits 78 at once, naming REDIS_URL without its password, when Redis refuses the credentials', async () => {
    const redis = await startRedis({ args: ['--requirepass', 'right-password'] });
    const api = await startApiProcess(`redis://:wrong-password@127.0.0.1:${redis.port}`);
    try {
      expect(await api.exited).toEqual({ code: 78, signal: null });
      const fatal = api.logs.find((line) => line.includes('"level":60')) ?? '';
      expect(fatal).toContain(`REDIS_URL: Redis at redis://:***@127.0.0.1:${redis.port} refused the connection (WRONGPASS`);
      expect(redisWaitLines(api.logs)).toEqual([]);
      expect(api.logs.join('\n')).not.toContain('wrong-password');
    } finally {
      await api.close();
    }
  });
});
