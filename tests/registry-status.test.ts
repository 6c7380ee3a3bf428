import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ModelRegistry, registryKeys, type ObjectStore, type Redis, type VersionStatus } from '@btd/shared';
import { useRegistryEnv } from './registry-fixtures.js';

const env = useRegistryEnv();
const TASK = 'tumor-binary';

/** Publishes a small artifact of its own (the registry reads its manifest only; nothing here loads it). */
async function publishVersion(): Promise<string> {
  const manifest = { name: `status-${randomUUID()}`, task: TASK, version: '1', createdAt: new Date().toISOString(), classes: ['no_tumor', 'tumor'], inputSize: 32 };
  const files = { 'manifest.json': Buffer.from(JSON.stringify(manifest)), 'model.json': Buffer.from('{}') };
  return (await env.registry.publish(TASK, files)).version;
}

/** Binds what `target` holds to it, so that a proxy passes on every call but the ones it changes. */
const passOn = <T extends object>(target: T, prop: string | symbol): unknown => {
  const value: unknown = Reflect.get(target, prop);
  return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
};

/**
 * The real store, except that the first JSON write `matches` picks is held until `release()`: before
 * its PUT is sent (a writer stopped between its read and its write), or, with `after`, once the PUT
 * is done (a writer stopped right after it).
 */
function holdingWrite(store: ObjectStore, matches: (key: string, value: unknown) => boolean, when: 'before' | 'after' = 'before') {
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  let held = false;
  const hold = async (key: string, value: unknown): Promise<void> => {
    if (held || !matches(key, value)) return;
    held = true;
    reach();
    await released;
  };
  const putJson = async (key: string, value: unknown): Promise<void> => {
    if (when === 'before') await hold(key, value);
    await store.putJson(key, value);
    if (when === 'after') await hold(key, value);
  };
  const proxy = new Proxy(store, { get: (target, prop) => (prop === 'putJson' ? putJson : passOn(target, prop)) });
  return { store: proxy, reached, release };
}

/** A connection to the real Redis whose `waiting` settles once a SET NX it sends finds the key taken: its caller waits for a lock. */
function watchingLockWaits(redis: Redis) {
  let found!: () => void;
  const waiting = new Promise<void>((resolve) => (found = resolve));
  const set = async (...args: unknown[]): Promise<unknown> => {
    const answer: unknown = await Reflect.apply(redis.set, redis, args);
    if (answer !== 'OK' && args.includes('NX')) found();
    return answer;
  };
  return { redis: new Proxy(redis, { get: (target, prop) => (prop === 'set' ? set : passOn(target, prop)) }), waiting };
}

const registryOn = (store: ObjectStore, redis: Redis) => new ModelRegistry({ store, redis, namespace: env.prefix });
const statusKey = (version: string) => registryKeys.status(TASK, version);
const isStatus = (version: string, state: VersionStatus['state']) => (key: string, value: unknown) =>
  key === statusKey(version) && (value as VersionStatus).state === state;

/**
 * Runs `first` until its held status write, then `second`; lets the held write go once `second` has
 * finished or is found waiting for a lock (which it can only get once `first` has written).
 */
async function interleave(held: ReturnType<typeof holdingWrite>, first: () => Promise<unknown>, second: (redis: Redis) => Promise<unknown>) {
  const connection = env.redis.duplicate();
  try {
    const firstDone = first();
    await held.reached;
    const watcher = watchingLockWaits(connection);
    const secondDone = second(watcher.redis);
    await Promise.race([secondDone, watcher.waiting]);
    held.release();
    await Promise.all([firstDone, secondDone]);
  } finally {
    connection.disconnect();
  }
}

describe('a version\'s status written by several writers at once', () => {
  it('keeps the reason of each of 20 workers refusing a version at the same moment', async () => {
    const version = await publishVersion();
    const connections = Array.from({ length: 20 }, () => env.redis.duplicate());
    try {
      const workers = connections.map((redis) => registryOn(env.store, redis));
      await Promise.all(workers.map((worker, i) => worker.reportRefusal(TASK, version, `worker-${i}`, `probe gives NaN (${i})`)));
    } finally {
      connections.forEach((redis) => redis.disconnect());
    }
    const status = await env.registry.status(TASK, version);
    expect(status?.state).toBe('refused');
    expect([...(status?.reasons ?? [])].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `refused by worker-${i}: probe gives NaN (${i})`).sort());
    expect(await env.registry.refusals(TASK, version)).toHaveLength(20);
  });

  it('keeps the reason of a worker that refuses while another worker\'s refusal is being written', async () => {
    const version = await publishVersion();
    const held = holdingWrite(env.store, isStatus(version, 'refused'));
    await interleave(
      held,
      () => registryOn(held.store, env.redis).reportRefusal(TASK, version, 'worker-a', 'weights are NaN'),
      (redis) => registryOn(env.store, redis).reportRefusal(TASK, version, 'worker-b', 'weights are NaN'),
    );
    const status = await env.registry.status(TASK, version);
    expect(status?.state).toBe('refused');
    expect(status?.reasons).toEqual(['refused by worker-a: weights are NaN', 'refused by worker-b: weights are NaN']);
  });

  it('keeps a refusal from a worker that saw the new pointer before the promotion wrote the statuses', async () => {
    const [old, next] = [await publishVersion(), await publishVersion()];
    await env.registry.promote(TASK, old, { by: 'ops', reason: 'baseline' });
    // The promoter stops right after writing the pointer, before anything else.
    const held = holdingWrite(env.store, (key) => key === registryKeys.pointer(TASK), 'after');
    await interleave(
      held,
      () => registryOn(held.store, env.redis).promote(TASK, next, { by: 'trainer', reason: 'passed the gate' }),
      async (redis) => {
        // A polling worker finds the new pointer, loads the version, and it fails its probe.
        expect((await env.registry.promoted(TASK))?.version).toBe(next);
        await registryOn(env.store, redis).reportRefusal(TASK, next, 'worker-1', 'probe image gives NaN');
      },
    );
    expect(await env.registry.status(TASK, next)).toMatchObject({ state: 'refused', reasons: ['refused by worker-1: probe image gives NaN'] });
    expect(await env.registry.status(TASK, old)).toMatchObject({ state: 'retired', reasons: [`replaced by ${next}`] });
    // The pointer still names it, so listings show it promoted, with the refusal as its reason.
    expect(await env.registry.describe(TASK, next)).toMatchObject({ promoted: true, state: 'promoted', reasons: ['refused by worker-1: probe image gives NaN'] });
  });

  it('shows a version promoted when the promotion comes after a refusal being written', async () => {
    const version = await publishVersion();
    const held = holdingWrite(env.store, isStatus(version, 'refused'));
    await interleave(
      held,
      () => registryOn(held.store, env.redis).reportRefusal(TASK, version, 'worker-1', 'probe image gives NaN'),
      (redis) => registryOn(env.store, redis).promote(TASK, version, { by: 'ops', reason: 'the worker was misconfigured' }),
    );
    expect(await env.registry.status(TASK, version)).toMatchObject({ state: 'promoted', reasons: [] });
    expect(await env.registry.refusals(TASK, version)).toHaveLength(1);
  });

  it('adds refusals to a status an earlier release wrote, and an operator\'s promotion overrides them', async () => {
    const version = await publishVersion();
    const stored = { state: 'refused', reasons: ['refused by old-worker: does not load'], updatedAt: '2026-01-05T10:00:00.000Z', source: { kind: 'training', jobId: '7' } };
    await env.store.putJson(statusKey(version), stored);

    await env.registry.reportRefusal(TASK, version, 'worker-1', 'probe image gives NaN');
    expect(await env.registry.status(TASK, version)).toMatchObject({
      state: 'refused',
      reasons: ['refused by old-worker: does not load', 'refused by worker-1: probe image gives NaN'],
      source: { kind: 'training', jobId: '7' },
    });
    await env.registry.promote(TASK, version, { by: 'ops', reason: 'checked by hand' });
    expect(await env.registry.status(TASK, version)).toMatchObject({ state: 'promoted', reasons: [], source: { kind: 'training', jobId: '7' } });
  });
});

describe('a status write that cannot take or keep its lock', () => {
  const statusLockKey = (version: string) => `${env.prefix}:registry:${TASK}:status-lock:${version}`;

  it('says that another write of the status holds it, not that a promotion is in progress', async () => {
    const version = await publishVersion();
    await env.redis.set(statusLockKey(version), 'another writer', 'PX', 120_000);
    await expect(env.registry.setStatus(TASK, version, { state: 'candidate', reasons: ['kept back'] })).rejects.toThrow(
      new RegExp(`^another write of the status of ${TASK} version ${version} is in progress \\(waited \\d+ ms\\)$`),
    );
  }, 90_000);

  it('says that the status lock lapsed, not the promotion lock, when a promotion loses it before writing the status', async () => {
    const version = await publishVersion();
    // The promoter stops right after writing the pointer, holding the version's status lock; another writer then takes it.
    const held = holdingWrite(env.store, (key) => key === registryKeys.pointer(TASK), 'after');
    const promotion = registryOn(held.store, env.redis).promote(TASK, version, { by: 'ops', reason: 'checked by hand' });
    await held.reached;
    await env.redis.set(statusLockKey(version), 'another writer', 'PX', 60_000);
    held.release();
    await expect(promotion).rejects.toThrow(`the status lock of ${TASK} version ${version} lapsed before its status was written; try again`);
  });
});
