import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisUnavailableError, closeRedis, createProducerConnection, pingRedis, waitForRedis } from '@btd/shared';
import { TEST_REDIS_URL, freePort, waitFor } from './helpers/index.js';

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
