import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordEvaluation } from './recorded-evaluation.js';

describe('recording an evaluation in a manifest', () => {
  let dir: string;
  const manifest = { name: 'tumor-binary', version: 'v1', metrics: { test: { n: 404, accuracy: 0.97 } } };
  const read = async () => JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as { version: string; metrics: Record<string, Record<string, unknown>> };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'btd-record-'));
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('adds the metrics under the name, with the command, and keeps the rest', async () => {
    await recordEvaluation(dir, 'testWithoutCopiesInTraining', { n: 275, accuracy: 0.96, leftOutAsCopies: 129, rejected: [] }, 'btd eval --record testWithoutCopiesInTraining');
    const after = await read();
    expect(after.version).toBe('v1');
    expect(after.metrics.test).toEqual(manifest.metrics.test);
    expect(after.metrics.testWithoutCopiesInTraining).toMatchObject({ n: 275, accuracy: 0.96, leftOutAsCopies: 129, command: 'btd eval --record testWithoutCopiesInTraining', modelVersion: 'v1' });
    expect(after.metrics.testWithoutCopiesInTraining).not.toHaveProperty('rejected');
  });

  it('refuses the names training writes, and names that are not identifiers', async () => {
    await expect(recordEvaluation(dir, 'test', { n: 1 }, 'btd eval')).rejects.toThrow(/training measured/);
    await expect(recordEvaluation(dir, 'test set', { n: 1 }, 'btd eval')).rejects.toThrow(/letters and digits/);
    expect(await read()).toEqual(manifest);
  });
});
