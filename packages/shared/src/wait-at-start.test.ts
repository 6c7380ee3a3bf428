import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { waitAtStart, type StartDependency } from './wait-at-start.js';

class Unavailable extends Error {}

/** A logger whose lines the test reads. */
function recordingLogger() {
  const lines: { level: number; msg: string; tries?: number; retryInMs?: number }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const server: StartDependency = { name: 'Server', isUnavailable: (error) => error instanceof Unavailable, firstDelayMs: 5, maxDelayMs: 20 };

/** An attempt that fails with `Unavailable` `failures` times, then answers `ok`. */
function failingTimes(failures: number) {
  let calls = 0;
  const attempt = async () => {
    calls += 1;
    if (calls <= failures) throw new Unavailable(`down (${calls})`);
    return 'ok';
  };
  return { attempt, calls: () => calls };
}

describe('waitAtStart', () => {
  it('tries again with backoff while the server is unavailable, logging each try, then goes on', async () => {
    const { logger, lines } = recordingLogger();
    const { attempt, calls } = failingTimes(4);
    expect(await waitAtStart(server, 'probe', attempt, { logger })).toBe('ok');
    expect(calls()).toBe(5);
    const waiting = lines.filter((line) => line.msg === 'Server unreachable at start-up; waiting for it');
    expect(waiting.map((line) => [line.level, line.tries, line.retryInMs])).toEqual([
      [50, 1, 5],
      [40, 2, 10],
      [40, 3, 20],
      [40, 4, 20],
    ]);
    expect(lines.at(-1)).toMatchObject({ msg: 'Server reachable; start-up goes on', tries: 5 });
  });

  it('throws an error that is the step’s own at once', async () => {
    const { logger, lines } = recordingLogger();
    const refused = new Error('refused');
    await expect(waitAtStart(server, 'probe', () => Promise.reject(refused), { logger })).rejects.toBe(refused);
    expect(lines).toEqual([]);
  });

  it('gives up once the wait has lasted giveUpAfterMs, throwing the last error', async () => {
    const { logger } = recordingLogger();
    const { attempt, calls } = failingTimes(Number.POSITIVE_INFINITY);
    const error = await waitAtStart({ ...server, giveUpAfterMs: 60 }, 'probe', attempt, { logger }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Unavailable);
    expect((error as Error).message).toBe(`down (${calls()})`);
    expect(calls()).toBeGreaterThan(1);
  });

  it('tries once with giveUpAfterMs 0', async () => {
    const { logger, lines } = recordingLogger();
    const { attempt, calls } = failingTimes(1);
    await expect(waitAtStart({ ...server, giveUpAfterMs: 0 }, 'probe', attempt, { logger })).rejects.toBeInstanceOf(Unavailable);
    expect([calls(), lines]).toEqual([1, []]);
  });

  it('stops waiting when its signal is aborted, rejecting with the signal’s reason', async () => {
    const { logger, lines } = recordingLogger();
    const { attempt, calls } = failingTimes(Number.POSITIVE_INFINITY);
    const stopping = new AbortController();
    const waiting = waitAtStart({ ...server, firstDelayMs: 60_000, maxDelayMs: 60_000 }, 'probe', attempt, { logger, signal: stopping.signal });
    while (lines.length === 0) await new Promise((resolve) => setImmediate(resolve));
    stopping.abort(new Error('SIGTERM'));
    await expect(waiting).rejects.toThrow('SIGTERM');
    expect(calls()).toBe(1);
  });

  it('does not go on once aborted during a try that then succeeds', async () => {
    const { logger } = recordingLogger();
    const stopping = new AbortController();
    const attempt = async () => {
      stopping.abort(new Error('SIGTERM'));
      return 'ok';
    };
    await expect(waitAtStart(server, 'probe', attempt, { logger, signal: stopping.signal })).rejects.toThrow('SIGTERM');
  });
});
