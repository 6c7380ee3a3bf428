import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { Redis } from '@btd/shared';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

/** A redis-server of one test's own, which it may start late, stop, give a password or keep loading. */
export interface TestRedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, without credentials. */
  readonly url: string;
  readonly child: ChildProcess;
  /** Kills it and waits for it to exit; safe to call twice. */
  stop(): Promise<void>;
}

/** Whether something accepts TCP connections on the port: a Redis that asks for a password or is loading answers no PING. */
async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => {
      resolve(true);
      socket.end();
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      resolve(false);
      socket.destroy();
    });
  });
}

/**
 * Starts `redis-server` on `port` (a free one if unset) without persistence, with `args` added
 * (`--requirepass`, say; `--appendonly yes` and a `--dir` override the no persistence), and waits
 * until it accepts connections.
 */
export async function startRedisServer(options: { port?: number; args?: readonly string[] } = {}): Promise<TestRedisServer> {
  const port = options.port ?? (await freePort());
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.args ?? [])], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  await waitFor(() => child.exitCode === null && accepting(port), { timeoutMs: 10_000, what: `redis-server on port ${port}` });
  return { port, url: `redis://127.0.0.1:${port}`, child, stop };
}

/** Registers the stop, after each test, of every server the returned function starts in it. */
export function useRedisServers(): (options?: Parameters<typeof startRedisServer>[0]) => Promise<TestRedisServer> {
  const started: TestRedisServer[] = [];
  afterEach(async () => {
    for (const server of started.splice(0)) await server.stop();
  });
  return async (options) => {
    const server = await startRedisServer(options);
    started.push(server);
    return server;
  };
}

/** The lines of a service's log that say it waits for Redis at start-up. */
export function redisWaitLines(logs: readonly string[]): string[] {
  return logs.filter((line) => line.includes('"Redis unreachable at start-up; waiting for it"'));
}

/**
 * A dataset of `keys` keys in an RDB file of its own, and the arguments that make a redis-server
 * load it slowly (`keyLoadDelayUs` µs a key besides the reading, about 0.25 ms a key in all by
 * default), answering `LOADING` meanwhile, as a Redis reading a large append-only file does.
 * `remove` deletes the file's folder.
 */
export async function slowLoadingDataset(keys: number, keyLoadDelayUs = 100): Promise<{ args: string[]; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'btd-redis-loading-'));
  const writer = await startRedisServer({ args: ['--dir', dir] });
  const redis = new Redis(writer.url);
  try {
    for (let start = 0; start < keys; start += 1000) {
      const pipeline = redis.pipeline();
      for (let key = start; key < Math.min(keys, start + 1000); key += 1) pipeline.set(`key:${key}`, 'value');
      await pipeline.exec();
    }
    await redis.save();
  } finally {
    redis.disconnect();
    await writer.stop();
  }
  return {
    args: ['--dir', dir, '--key-load-delay', String(keyLoadDelayUs), '--loading-process-events-interval-bytes', '1024'],
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
