import { Writable } from 'node:stream';
import { Queue, Worker } from 'bullmq';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  REDACTED_PATHS,
  RedisUnavailableError,
  closeRedis,
  closeWorker,
  createProducerConnection,
  createWorkerConnection,
  logConnectionHealth,
  pingRedis,
  waitForRedis,
  waitForRedisAtStart,
  type Logger,
} from '@btd/shared';
import { TEST_REDIS_URL, freePort, redisWaitLines, sleep, slowLoadingDataset, useRedisServers, waitFor } from './helpers/index.js';

/** Throwaway redis-servers, so a test can take Redis away without disturbing others; stopped after each test. */
const startRedis = useRedisServers();

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
      redis.child.kill('SIGKILL');
      await waitFor(() => client.status !== 'ready', { timeoutMs: 5000 });
      // No offline queue: the command fails while Redis is still down (it would wait for the
      // reconnection otherwise, which comes only below), so an HTTP handler can answer 503.
      await expect(client.get('k')).rejects.toThrow();

      await startRedis({ port: redis.port });
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
    redis.child.kill('SIGKILL');
    // Long enough for the reconnect delay to reach its 2-second ceiling; Redis is back before the
    // blocking connection tries again, which is when a plain Worker.close() would never settle.
    await sleep(4000);
    await startRedis({ port: redis.port });
    expect(['closed', 'abandoned']).toContain(await closeWorker(worker, 1000));
    await closeRedis(connection);
  });
});

describe('waiting for Redis at start-up', () => {
  const clients: ReturnType<typeof createProducerConnection>[] = [];
  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
  });

  /** A logger as the services' (with their redactions) whose lines the test reads, and a connection to `url`. */
  function service(url: string) {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ level: 'info', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, stream);
    const client = createProducerConnection(url);
    clients.push(client);
    logConnectionHealth(client, 'producer', logger);
    const waiting = () => redisWaitLines(lines);
    return { logger, client, lines, waiting };
  }

  it('waits for a Redis that starts after the service, saying so, then goes on with a ready connection', async () => {
    const port = await freePort();
    const { logger, client, lines, waiting } = service(`redis://127.0.0.1:${port}`);
    const opening = waitForRedisAtStart(client, `redis://127.0.0.1:${port}`, { logger, timeoutMs: 120_000 });
    let opened = false;
    void opening.then(() => (opened = true), () => (opened = true));
    await waitFor(() => waiting().length >= 3, { timeoutMs: 30_000, what: 'three tries at start-up' });
    expect(opened).toBe(false);
    expect(waiting()[0]).toContain('ECONNREFUSED');
    await startRedis({ port });
    await opening;
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
    expect(lines.some((line) => line.includes('"Redis reachable; start-up goes on"'))).toBe(true);
  });

  it('waits for a Redis still loading its dataset (LOADING)', async () => {
    const dataset = await slowLoadingDataset(10_000);
    try {
      const redis = await startRedis({ args: dataset.args });
      const { logger, client, waiting } = service(redis.url);
      await expect(pingRedis(redis.url)).rejects.toThrow(/LOADING/);
      await waitForRedisAtStart(client, redis.url, { logger, timeoutMs: 120_000 });
      expect(waiting().length).toBeGreaterThanOrEqual(1);
      expect(waiting()[0]).toContain('LOADING');
      expect(await client.dbsize()).toBe(10_000);
    } finally {
      await dataset.remove();
    }
  });

  it('gives up on a Redis still loading after timeoutMs saying that it runs but cannot serve yet, not that none answered', async () => {
    const dataset = await slowLoadingDataset(20_000);
    try {
      const redis = await startRedis({ args: dataset.args });
      const { logger, client } = service(redis.url);
      const error = await waitForRedisAtStart(client, redis.url, { logger, timeoutMs: 1000 }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect((error as Error).message).toMatch(/^Redis at redis:\/\/127\.0\.0\.1:\d+ answers but cannot serve yet \(LOADING .*; gave up after \d+ s, REDIS_STARTUP_TIMEOUT_MS\): .*raise REDIS_STARTUP_TIMEOUT_MS/);
      expect((error as Error).message).not.toContain('Start one');
    } finally {
      await dataset.remove();
    }
  });

  it('refuses credentials Redis does not accept at once, naming REDIS_URL without the password', async () => {
    const redis = await startRedis({ args: ['--requirepass', 'right-password'] });
    for (const url of [`redis://:wrong-password@127.0.0.1:${redis.port}`, redis.url]) {
      const { logger, client, lines, waiting } = service(url);
      const error = await waitForRedisAtStart(client, url, { logger, timeoutMs: 120_000 }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((issue) => issue.env)).toEqual(['REDIS_URL']);
      expect((error as Error).message).toMatch(/refused the connection \((WRONGPASS|NOAUTH) /);
      expect(waiting()).toEqual([]);
      // The connection's own error, logged once, carries the AUTH command: its arguments are not logged.
      await waitFor(() => lines.some((line) => line.includes('"Redis not reachable; connecting"')), { what: 'the connection error in the log' });
      expect([(error as Error).message, ...lines].join('\n')).not.toContain('wrong-password');
    }
  });

  it('logs a connection never ready as connecting, then established; one that was ready as lost, then restored', async () => {
    const port = await freePort();
    const { logger, client, lines } = service(`redis://127.0.0.1:${port}`);
    const messages = () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg).filter((msg) => msg.startsWith('Redis conn') || msg.startsWith('Redis not'));
    const opening = waitForRedisAtStart(client, `redis://127.0.0.1:${port}`, { logger, timeoutMs: 120_000 });
    await waitFor(() => messages().length >= 1, { what: 'the first connection error' });
    const redis = await startRedis({ port });
    await opening;
    await waitFor(() => messages().length >= 2, { what: 'the connection established' });
    expect(messages()).toEqual(['Redis not reachable; connecting', 'Redis connection established']);

    await redis.stop();
    await waitFor(() => messages().length >= 3, { what: 'the connection lost' });
    await startRedis({ port });
    await waitFor(() => messages().length >= 4, { timeoutMs: 30_000, what: 'the connection restored' });
    expect(messages().slice(2)).toEqual(['Redis connection lost; reconnecting', 'Redis connection restored']);
  });

  it('gives up after timeoutMs with the reason Redis did not answer, naming the setting', async () => {
    const url = `redis://:secret@127.0.0.1:${await freePort()}`;
    const { logger, client, waiting } = service(url);
    const error = await waitForRedisAtStart(client, url, { logger, timeoutMs: 1500 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as Error).message).toMatch(/^Redis did not answer at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(connect ECONNREFUSED .*; gave up after \d+ s, REDIS_STARTUP_TIMEOUT_MS\)/);
    expect(waiting().length).toBeGreaterThanOrEqual(2);
  });

  it('stops waiting when the service is stopped', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const { logger, client, waiting } = service(url);
    const stopping = new AbortController();
    const opening = waitForRedisAtStart(client, url, { logger, timeoutMs: 120_000, signal: stopping.signal });
    await waitFor(() => waiting().length >= 1, { what: 'a first try' });
    stopping.abort(new Error('SIGTERM'));
    await expect(opening).rejects.toThrow('SIGTERM');
  });
});
