import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '@btd/model';
import {
  ArtifactVerificationError,
  ModelRegistry,
  ModelRuntimeUnavailableError,
  NoRollbackTargetError,
  PromotionConflictError,
  readArtifactDirectory,
  verifyArtifact,
  type ArtifactCheck,
} from '@btd/shared';
import { REPO_ROOT } from './helpers/index.js';
import { makeArtifact, scrambleWeights, useRegistryEnv } from './registry-fixtures.js';

const env = useRegistryEnv();

const publishNew = async (task: 'tumor-binary' | 'tumor-type' = 'tumor-binary') =>
  (await env.registry.publishDirectory(task, await makeArtifact(env.dir, task))).version;

/** The check the API runs before a manual promotion: load the artifact and run its probe. */
const loadsAndProbes: ArtifactCheck = async (artifact) => {
  const model = await verifyArtifact(artifact.files, { task: artifact.task, version: artifact.version, load: loadModel });
  model.dispose();
};

describe('promotion', () => {
  it('moves the pointer, appends who/what/when/why to the history and updates statuses', async () => {
    const first = await publishNew();
    const second = await publishNew();
    await env.registry.promote('tumor-binary', first, { by: 'alice', reason: 'initial' });
    const record = await env.registry.promote('tumor-binary', second, { by: 'bob', reason: 'better recall' });

    expect(record).toMatchObject({ version: second, by: 'bob', reason: 'better recall', previousVersion: first, sequence: 2, action: 'promote' });
    expect(await env.registry.promoted('tumor-binary')).toEqual(record);
    const history = await env.registry.history('tumor-binary');
    expect(history.map((r) => [r.version, r.by, r.sequence])).toEqual([[second, 'bob', 2], [first, 'alice', 1]]);
    expect(Date.parse(history[0]!.at)).toBeGreaterThanOrEqual(Date.parse(history[1]!.at));
    const states = Object.fromEntries((await env.registry.listVersions('tumor-binary')).map((v) => [v.version, v.state]));
    expect(states).toEqual({ [first]: 'retired', [second]: 'promoted' });
  });

  it('is a no-op when the version is already promoted', async () => {
    const version = await publishNew();
    const first = await env.registry.promote('tumor-binary', version, { by: 'a', reason: 'x' });
    const again = await env.registry.promote('tumor-binary', version, { by: 'b', reason: 'y' });
    expect(again).toEqual(first);
    expect(await env.registry.history('tumor-binary')).toHaveLength(1);
  });

  it('serialises concurrent promoters: every promotion gets its own sequence number', async () => {
    const versions = await Promise.all(Array.from({ length: 6 }, () => publishNew()));
    // Separate registry instances with their own Redis connections, as separate API replicas would be.
    const connections = versions.map(() => env.redis.duplicate());
    const replicas = connections.map((redis) => new ModelRegistry({ store: env.store, redis, namespace: env.prefix }));
    try {
      await Promise.all(versions.map((version, i) => replicas[i]!.promote('tumor-binary', version, { by: `replica-${i}`, reason: 'race' })));
    } finally {
      connections.forEach((redis) => redis.disconnect());
    }
    const history = await env.registry.history('tumor-binary');
    expect(history.map((r) => r.sequence).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    // Each record names the one before it: no promoter overwrote another's read.
    const bySequence = [...history].sort((a, b) => a.sequence - b.sequence);
    bySequence.slice(1).forEach((record, i) => expect(record.previousVersion).toBe(bySequence[i]!.version));
    expect((await env.registry.promoted('tumor-binary'))?.version).toBe(bySequence.at(-1)!.version);
  });

  it('refuses a promotion based on a stale view of the pointer', async () => {
    const [a, b, c] = [await publishNew(), await publishNew(), await publishNew()];
    await env.registry.promote('tumor-binary', a, { by: 't', reason: 'x' });
    const results = await Promise.allSettled([
      env.registry.promote('tumor-binary', b, { by: 'one', reason: 'x', expectedCurrent: a }),
      env.registry.promote('tumor-binary', c, { by: 'two', reason: 'x', expectedCurrent: a }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(PromotionConflictError);
  });

  it('refuses a version that fails its check and records why; the pointer stays', async () => {
    const good = await publishNew();
    const brokenDir = await makeArtifact(env.dir, 'tumor-binary');
    await scrambleWeights(brokenDir);
    const broken = (await env.registry.publishDirectory('tumor-binary', brokenDir)).version;
    await env.registry.promote('tumor-binary', good, { by: 't', reason: 'x', check: loadsAndProbes });

    await expect(env.registry.promote('tumor-binary', broken, { by: 'carol', reason: 'try', check: loadsAndProbes })).rejects.toBeInstanceOf(
      ArtifactVerificationError,
    );
    expect((await env.registry.promoted('tumor-binary'))?.version).toBe(good);
    const [refusal] = await env.registry.refusals('tumor-binary', broken);
    expect(refusal).toMatchObject({ by: 'carol', reason: expect.stringMatching(/probe prediction failed: .*gave NaN/) });
    expect((await env.registry.status('tumor-binary', broken))?.state).toBe('refused');
  });

  it('does not refuse a version whose check could not run for the checker\'s own reasons', async () => {
    const [current, next] = [await publishNew(), await publishNew()];
    await env.registry.promote('tumor-binary', current, { by: 't', reason: 'x' });
    const runtimeGone: ArtifactCheck = () => Promise.reject(new ModelRuntimeUnavailableError('the model backend cannot start'));
    const outage: ArtifactCheck = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9000'));

    await expect(env.registry.promote('tumor-binary', next, { by: 'carol', reason: 'try', check: runtimeGone })).rejects.toBeInstanceOf(
      ModelRuntimeUnavailableError,
    );
    await expect(env.registry.rollback('tumor-binary', { by: 'carol', reason: 'try', to: next, check: outage })).rejects.toThrow(/ECONNREFUSED/);
    expect((await env.registry.promoted('tumor-binary'))?.version).toBe(current);
    expect(await env.registry.refusals('tumor-binary', next)).toEqual([]);
    expect(await env.registry.status('tumor-binary', next)).toMatchObject({ state: 'candidate', reasons: [] });
    // Once the checker works again, the version is promoted like any other.
    await env.registry.promote('tumor-binary', next, { by: 'carol', reason: 'try', check: loadsAndProbes });
    expect((await env.registry.promoted('tumor-binary'))?.version).toBe(next);
  });
});

describe('rollback', () => {
  it('walks back through earlier promotions instead of flipping between two', async () => {
    const [a, b, c] = [await publishNew(), await publishNew(), await publishNew()];
    for (const version of [a, b, c]) await env.registry.promote('tumor-binary', version, { by: 't', reason: 'x' });

    const first = await env.registry.rollback('tumor-binary', { by: 'ops', reason: 'c misbehaves', check: loadsAndProbes });
    expect(first).toMatchObject({ version: b, previousVersion: c, action: 'rollback', by: 'ops' });
    expect((await env.registry.rollback('tumor-binary', { by: 'ops', reason: 'b too' })).version).toBe(a);
    await expect(env.registry.rollback('tumor-binary', { by: 'ops', reason: 'again' })).rejects.toBeInstanceOf(NoRollbackTargetError);
    expect((await env.registry.status('tumor-binary', c))?.reasons).toEqual([`rolled back to ${b}`]);
  });

  it('orders the history and rolls back by sequence, whatever the promoters\' clocks say', async () => {
    const [a, b, c] = [await publishNew(), await publishNew(), await publishNew()];
    await env.registry.promote('tumor-binary', a, { by: 'api', reason: 'a' });
    // A promoter on a host whose clock runs a minute ahead, then one on a host with the right time.
    const ahead = new ModelRegistry({ store: env.store, redis: env.redis, namespace: env.prefix, now: () => new Date(Date.now() + 60_000) });
    await ahead.promote('tumor-binary', b, { by: 'trainer', reason: 'b' });
    await env.registry.promote('tumor-binary', c, { by: 'api', reason: 'c' });

    const history = await env.registry.history('tumor-binary');
    expect(history.map((r) => [r.sequence, r.version])).toEqual([[3, c], [2, b], [1, a]]);
    expect((await env.registry.history('tumor-binary', 1)).map((r) => r.version)).toEqual([c]);
    const back = await env.registry.rollback('tumor-binary', { by: 'ops', reason: 'c misbehaves' });
    expect(back).toMatchObject({ action: 'rollback', version: b, previousVersion: c, sequence: 4 });
    expect((await env.registry.promoted('tumor-binary'))?.version).toBe(b);
  });

  it('does not undo a promotion that lands while the rollback target is being checked', async () => {
    const [a, b, c] = [await publishNew(), await publishNew(), await publishNew()];
    await env.registry.promote('tumor-binary', a, { by: 't', reason: 'a' });
    await env.registry.promote('tumor-binary', b, { by: 't', reason: 'b' });
    // The trainer promotes C while the rollback (back to A) loads and probes A.
    const promoteMeanwhile: ArtifactCheck = async (artifact) => {
      await env.registry.promote('tumor-binary', c, { by: 'trainer', reason: 'passed the gate' });
      await loadsAndProbes(artifact);
    };

    const rollback = env.registry.rollback('tumor-binary', { by: 'ops', reason: 'b is bad', check: promoteMeanwhile });
    await expect(rollback).rejects.toMatchObject({ name: 'PromotionConflictError', expected: b, actual: c });
    expect((await env.registry.promoted('tumor-binary'))?.version).toBe(c);
    expect((await env.registry.history('tumor-binary')).map((r) => r.action)).toEqual(['promote', 'promote', 'promote']);
    // Told of a pointer it did not expect, a rollback changes nothing either.
    const stale = env.registry.rollback('tumor-binary', { by: 'ops', reason: 'b is bad', expectedCurrent: b });
    await expect(stale).rejects.toBeInstanceOf(PromotionConflictError);
    expect((await env.registry.promoted('tumor-binary'))?.version).toBe(c);
  });

  it('never rolls back to a version that fails to load', async () => {
    const brokenDir = await makeArtifact(env.dir, 'tumor-binary');
    const broken = (await env.registry.publishDirectory('tumor-binary', brokenDir)).version;
    const good = await publishNew();
    await env.registry.promote('tumor-binary', broken, { by: 't', reason: 'x' });
    await env.registry.promote('tumor-binary', good, { by: 't', reason: 'x' });
    // The stored weights of the older version are truncated behind the registry's back.
    const key = `models/tumor-binary/${broken}/weights.bin`;
    const weights = await env.store.get(key);
    await env.store.put(key, weights.subarray(0, 100), 'application/octet-stream');

    await expect(env.registry.rollback('tumor-binary', { by: 'ops', reason: 'x', check: loadsAndProbes })).rejects.toThrow();
    expect((await env.registry.promoted('tumor-binary'))?.version).toBe(good);
  });
});

describe('seeding from bundled models', () => {
  it('publishes and promotes each bundled task once, even with several workers starting together', async () => {
    const modelsDir = path.join(env.dir, 'models');
    await mkdir(modelsDir);
    for (const task of ['tumor-binary', 'tumor-type'] as const) await rename(await makeArtifact(env.dir, task), path.join(modelsDir, task));

    const connections = Array.from({ length: 3 }, () => env.redis.duplicate());
    const workers = connections.map((redis) => new ModelRegistry({ store: env.store, redis, namespace: env.prefix }));
    const outcomes = await Promise.all(workers.map((registry, i) => registry.seedFromDirectory(modelsDir, `worker-${i}`))).finally(() =>
      connections.forEach((redis) => redis.disconnect()),
    );

    for (const task of ['tumor-binary', 'tumor-type']) {
      const perWorker = outcomes.map((list) => list.find((o) => o.task === task)?.outcome);
      expect(perWorker.filter((o) => o === 'seeded')).toHaveLength(1);
      expect(perWorker.filter((o) => o === 'present')).toHaveLength(2);
      expect(await env.registry.listVersionIds(task)).toHaveLength(1);
      expect(await env.registry.promoted(task)).toMatchObject({ action: 'seed', sequence: 1 });
    }
  });

  it('seeds the shipped models, which verify as served, with the rates their records could not measure kept null', async () => {
    const outcomes = await env.registry.seedFromDirectory(path.join(REPO_ROOT, 'models'));
    expect(outcomes.map((o) => o.outcome)).toEqual(['seeded', 'seeded']);
    for (const { task, version } of outcomes) {
      const artifact = await env.registry.fetchArtifact(task, version!);
      const model = await verifyArtifact(artifact.files, { task, version: version!, load: loadModel });
      model.dispose();
    }
    const [detector] = await env.registry.listVersions('tumor-binary');
    // 310 tumour scans and no healthy one: no specificity, and no recall of no_tumor.
    expect(detector?.manifest?.metrics?.fourClassTestingWithoutCopies).toMatchObject({ n: 310, specificity: null, auc: null, perClass: { no_tumor: { recall: null } } });
  });

  it('says that another worker or trainer is seeding the task when its seed lock stays held, not that a promotion is in progress', async () => {
    // A first seeder holds the lock of tumor-binary, as a worker still publishing its bundled model does.
    await env.redis.set(`${env.prefix}:registry:tumor-binary:seed-lock`, 'a first seeder', 'PX', 60_000);
    await expect(env.registry.seedFromDirectory(path.join(REPO_ROOT, 'models'), 'worker-1', { lockWaitMs: 200 })).rejects.toThrow(
      /^another worker or trainer is seeding tumor-binary from its bundled model \(waited \d+ ms\)$/,
    );
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([]);
  });

  it('finishes a seed that published its bundled model but died before promoting it, so workers can start', async () => {
    const bundled = path.join(REPO_ROOT, 'models', 'tumor-binary');
    const published = await env.registry.publish('tumor-binary', await readArtifactDirectory(bundled));
    expect(await env.registry.promoted('tumor-binary')).toBeNull();

    const outcomes = await env.registry.seedFromDirectory(path.join(REPO_ROOT, 'models'));
    expect(outcomes.find((o) => o.task === 'tumor-binary')).toEqual({ task: 'tumor-binary', outcome: 'seeded', version: published.version });
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([published.version]);
    expect(await env.registry.promoted('tumor-binary')).toMatchObject({ version: published.version, action: 'seed' });
    // Seeded once, it is left alone afterwards.
    expect((await env.registry.seedFromDirectory(path.join(REPO_ROOT, 'models'))).map((o) => o.outcome)).toEqual(['present', 'present']);
  });

  it('leaves a task alone when its bundled model is missing', async () => {
    const outcomes = await env.registry.seedFromDirectory(path.join(env.dir, 'no-models-here'));
    expect(outcomes.map((o) => o.outcome)).toEqual(['missing', 'missing']);
    expect(await env.registry.promoted('tumor-binary')).toBeNull();
  });
});
