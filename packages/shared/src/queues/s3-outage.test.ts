import { Writable } from 'node:stream';
import { DelayedError, type Job } from 'bullmq';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ObjectReadInterruptedError } from '../storage/object-read-interrupted.error.js';
import { S3Outage, type S3OutagePolicy } from './s3-outage.js';

const outageError = new ObjectReadInterruptedError('b', 'key', { cause: Object.assign(new Error('aborted'), { code: 'ECONNRESET' }) });

/** A logger that keeps what it writes, and the levels and messages written. */
function capturingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString('utf8')) as { level: number; msg: string });
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** A job on its only attempt, as far as an outage reads and writes it; a deferral only records itself. */
function jobOnLastAttempt(): Job {
  const job = {
    progress: {} as object,
    opts: { attempts: 1 },
    attemptsMade: 0,
    updateProgress: async (progress: object) => void (job.progress = progress),
    moveToDelayed: async () => undefined,
  };
  return job as unknown as Job;
}

/** A gauge and a counter that remember their values. */
function recordingMetrics() {
  const gauge: number[] = [];
  return { gauge, metrics: { s3Unavailable: { set: (value: number) => void gauge.push(value) }, s3Deferrals: { inc: () => undefined } } };
}

async function deferral(outage: S3Outage, job: Job, log: ReturnType<typeof capturingLogger>['logger']): Promise<unknown> {
  return outage.deferIfUnavailable(job, 'token', outageError, log).then(
    () => 'returned',
    (error: unknown) => error,
  );
}

describe('S3Outage', () => {
  it('with no budget, lets an outage error fail the job as any error, without calling it longer than the budget', async () => {
    const { logger, lines } = capturingLogger();
    const { gauge, metrics } = recordingMetrics();
    const outage = new S3Outage({ budgetMs: 0, maxDelayMs: 50 }, logger, metrics);
    expect(await deferral(outage, jobOnLastAttempt(), logger)).toBe('returned');
    expect(lines.filter((line) => line.level >= 40).map((line) => line.msg)).toEqual([]);
    expect(gauge).toEqual([]);
  });

  it('clears its gauge once its probe finds S3 back, though no job gets through', async () => {
    const { logger, lines } = capturingLogger();
    const { gauge, metrics } = recordingMetrics();
    let s3Up = false;
    let probes = 0;
    const probe = async () => {
      probes += 1;
      if (!s3Up) throw outageError;
    };
    const policy: S3OutagePolicy = { budgetMs: 60_000, maxDelayMs: 50 };
    const outage = new S3Outage(policy, logger, metrics, probe);
    try {
      expect(await deferral(outage, jobOnLastAttempt(), logger)).toBeInstanceOf(DelayedError);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect([gauge, probes > 1]).toEqual([[1], true]);
      s3Up = true;
      await expect.poll(() => gauge, { timeout: 2000 }).toEqual([1, 0]);
      expect(lines.map((line) => line.msg)).toContain('S3 reachable again; deferred jobs resume');
      const settled = probes;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(probes).toBe(settled);
    } finally {
      outage.close();
    }
  });

  it('stops probing once closed', async () => {
    const { logger } = capturingLogger();
    let probes = 0;
    const outage = new S3Outage({ budgetMs: 60_000, maxDelayMs: 20 }, logger, undefined, async () => {
      probes += 1;
      throw outageError;
    });
    await deferral(outage, jobOnLastAttempt(), logger);
    outage.close();
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(probes).toBe(0);
  });
});
