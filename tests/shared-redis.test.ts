import { spawn, type ChildProcess } from 'node:child_process';
import { Queue, Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import {
  RedisUnavailableError,
  closeRedis,
  closeWorker,
  createProducerConnection,
  createWorkerConnection,
  pingRedis,
  waitForRedis,
  type Logger,
} from '@btd/shared';
import { TEST_REDIS_URL, freePort, sleep, waitFor } from './helpers/index.js';

const servers: ChildProcess[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await new Promise((resolve) => server.once('exit', resolve));
    }
  }
});


/** A throwaway redis-server, so a test can take Redis away without disturbing others. */
async function startRedis(port?: number): Promise<{ url: string; process: ChildProcess }> {
  port ??= await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  servers.push(child);
  const url = `redis://127.0.0.1:${port}`;
  await waitFor(() => pingRedis(url, 500).then(() => true), { timeoutMs: 10_000 });
  return { url, process: child };
}

describe('Redis helpers', () => {
  it('pingRedis answers for a running Redis', async () => {
    await expect(pingRedis(TEST_REDIS_URL)).resolves.toBeUndefined();
  });

  it('names the URL (password masked) and the cause when Redis does not answer', async () => {
    const url = `redis://:secret@127.0.0.1:${await freePort()}`;
    const error = await pingRedis(url, 1000).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect((error as Error).message).toContain('redis://:***@127.0.0.1');
    expect((error as Error).message).not.toContain('secret');
  });

  it('a producer connection fails commands at once while Redis is down, and recovers', async () => {
    const redis = await startRedis();
    const client = createProducerConnection(redis.url);
    client.on('error', () => {});
    try {
      await waitForRedis(client, redis.url);
      await client.set('k', 'v');
      redis.process.kill('SIGKILL');
      await waitFor(() => client.status !== 'ready', { timeoutMs: 5000 });
      const started = Date.now();
      await expect(client.get('k')).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(1000); // no offline queue: the HTTP handler can answer 503

      await startRedis(Number(new URL(redis.url).port));
      await waitFor(() => client.status === 'ready', { timeoutMs: 10_000, what: 'reconnection' });
      await client.set('k', 'again');
      expect(await client.get('k')).toBe('again');
    } finally {
      await closeRedis(client);
      await closeRedis(client);
    }
  });
});

describe('closing a queue worker', () => {
  /** A worker on a throwaway Redis whose processor runs `process`. */
  async function startWorker(process: () => Promise<void>) {
    const redis = await startRedis();
    const connection = createWorkerConnection(redis.url);
    connection.on('error', () => {});
    const worker = new Worker('close-probe', process, { connection });
    worker.on('error', () => {});
    await worker.waitUntilReady();
    return { redis, connection, worker };
  }

  it('closes a worker with nothing in flight', async () => {
    const { connection, worker } = await startWorker(async () => {});
    expect(await closeWorker(worker, 10_000)).toBe('closed');
    await closeRedis(connection);
  });

  it('gives up on a job that never finishes once the grace period is over', async () => {
    const { redis, connection, worker } = await startWorker(() => new Promise<void>(() => {}));
    const producer = createProducerConnection(redis.url);
    producer.on('error', () => {});
    const queue = new Queue('close-probe', { connection: producer });
    const active = new Promise((resolve) => worker.once('active', resolve));
    await queue.add('stuck', {});
    await active;
    const warnings: unknown[] = [];
    const logger = { warn: (fields: unknown) => warnings.push(fields) } as unknown as Logger;
    expect(await closeWorker(worker, 300, logger)).toBe('abandoned');
    expect(warnings).toEqual([{ queue: 'close-probe', graceMs: 300 }]);
    await queue.close();
    await closeRedis(producer);
    await closeRedis(connection);
  });

  it('returns when called while the worker waits to reconnect after an outage', async () => {
    const { redis, connection, worker } = await startWorker(async () => {});
    redis.process.kill('SIGKILL');
    // Long enough for the reconnect delay to reach its 2-second ceiling; Redis is back before the
    // blocking connection tries again, which is when a plain Worker.close() would never settle.
    await sleep(4000);
    await startRedis(Number(new URL(redis.url).port));
    expect(['closed', 'abandoned']).toContain(await closeWorker(worker, 1000));
    await closeRedis(connection);
  });
});
