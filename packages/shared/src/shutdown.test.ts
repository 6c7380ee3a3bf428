import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SHUTDOWN_PHASE, Shutdown, once } from './shutdown.js';

const logger = pino({ level: 'silent' });

describe('Shutdown', () => {
  it('runs steps by phase, then registration order, once', async () => {
    const order: string[] = [];
    const shutdown = new Shutdown({ logger, timeoutMs: 1000 })
      .add('models', SHUTDOWN_PHASE.resources, () => order.push('models'))
      .add('redis', SHUTDOWN_PHASE.connections, () => order.push('redis'))
      .add('worker', SHUTDOWN_PHASE.drain, async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        order.push('worker');
      })
      .add('s3', SHUTDOWN_PHASE.connections, () => order.push('s3'));
    const [first, second] = await Promise.all([shutdown.run('test'), shutdown.run('again')]);
    expect(order).toEqual(['worker', 'redis', 's3', 'models']);
    expect([first, second]).toEqual([0, 0]);
    expect(await shutdown.run('later')).toBe(0);
    expect(order).toHaveLength(4);
  });

  it('keeps going after a failing step and reports failure', async () => {
    const ran: string[] = [];
    const shutdown = new Shutdown({ logger, timeoutMs: 1000 })
      .add('broken', SHUTDOWN_PHASE.drain, () => {
        throw new Error('boom');
      })
      .add('after', SHUTDOWN_PHASE.connections, () => ran.push('after'));
    expect(await shutdown.run('test')).toBe(1);
    expect(ran).toEqual(['after']);
  });

  it('gives up after the hard timeout', async () => {
    const shutdown = new Shutdown({ logger, timeoutMs: 50 }).add('hangs', SHUTDOWN_PHASE.drain, () => new Promise(() => {}));
    // The step never settles: only the hard timeout lets run() answer.
    expect(await shutdown.run('test')).toBe(1);
  });
});

describe('once', () => {
  it('runs the function once and shares its promise', async () => {
    let calls = 0;
    const close = once(async () => {
      calls += 1;
      return calls;
    });
    expect(await Promise.all([close(), close()])).toEqual([1, 1]);
    expect(await close()).toBe(1);
  });
});
