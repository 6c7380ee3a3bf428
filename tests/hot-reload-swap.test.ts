import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Registry as MetricsRegistry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadModel } from '@btd/model';
import { announcePromotion, createLogger, ModelRegistry, ModelRuntimeUnavailableError, registryKeys } from '@btd/shared';
import { RegistryModelProvider } from '../services/inference-worker/src/model-provider.js';
import { mriSlices } from './api-fixtures.js';
import { answerOtherwise, claimWrongInputSize, makeArtifact, scrambleWeights, useRegistryEnv } from './registry-fixtures.js';
import { TEST_REDIS_URL } from './helpers/index.js';

const logger = createLogger({ name: 'hot-reload-test', level: 'silent', pretty: false });
const TASK = 'tumor-binary' as const;

interface JobOutcome {
  version: string;
  contentHash: string;
  startedAt: number;
  finishedAt: number;
}

const env = useRegistryEnv();
let provider: RegistryModelProvider;
let metrics: MetricsRegistry;
let seeded: string;

async function startProvider(options: Partial<ConstructorParameters<typeof RegistryModelProvider>[0]> = {}): Promise<RegistryModelProvider> {
  const started = new RegistryModelProvider({
    registry: env.registry,
    logger,
    workerId: 'worker-test',
    tasks: [TASK],
    modelsDir: path.join(env.dir, 'models'),
    metrics,
    disposeGraceMs: 50,
    ...options,
  });
  await started.start();
  return started;
}

const swapTo = (version: string) =>
  new Promise<{ tookMs: number }>((resolve) => {
    const onSwap = (event: { to: string; tookMs: number }) => {
      if (event.to !== version) return;
      provider.off('swapped', onSwap);
      resolve(event);
    };
    provider.on('swapped', onSwap);
  });

beforeEach(async () => {
  metrics = new MetricsRegistry();
  await mkdir(path.join(env.dir, 'models'));
  await rename(await makeArtifact(env.dir, TASK), path.join(env.dir, 'models', TASK));
  provider = await startProvider();
  seeded = provider.current(TASK).version;
});

afterEach(async () => {
  await provider.close();
});

async function publish(prepare?: (dir: string) => Promise<void>): Promise<string> {
  const dir = await makeArtifact(env.dir, TASK);
  await prepare?.(dir);
  return (await env.registry.publishDirectory(TASK, dir)).version;
}

describe('hot reload under a steady stream of jobs', () => {
  it('switches to a promoted model with no failed or lost job; each job keeps the model it began with', async () => {
    const images = mriSlices('yes', 4).map((s) => s.bytes);
    const connection = { url: TEST_REDIS_URL };
    const queue = new Queue('hot-reload', { connection, prefix: env.prefix });
    const events = new QueueEvents('hot-reload', { connection, prefix: env.prefix });
    const worker = new Worker<{ image: number }, JobOutcome>(
      'hot-reload',
      async (job) => {
        const lease = provider.acquire(TASK);
        const startedAt = performance.now();
        try {
          await lease.model.predict(images[job.data.image % images.length]!, { heatmap: true });
          return { version: lease.model.version, contentHash: lease.model.contentHash, startedAt, finishedAt: performance.now() };
        } finally {
          lease.release();
        }
      },
      { connection, prefix: env.prefix, concurrency: 2 },
    );
    const failed: string[] = [];
    worker.on('failed', (job, error) => failed.push(`${job?.id}: ${error.message}`));
    try {
      // One waitUntilFinished listener per job.
      events.setMaxListeners(200);
      queue.setMaxListeners(200);
      await events.waitUntilReady();
      const next = await publish();
      const added: string[] = [];
      const produce = async (count: number) => {
        for (let i = 0; i < count; i++) {
          added.push((await queue.add('infer', { image: added.length })).id!);
          await sleep(15);
        }
      };
      await produce(30);
      const swapped = swapTo(next);
      const promotedAt = performance.now();
      await Promise.all([env.registry.promote(TASK, next, { by: 'test', reason: 'hot reload' }), produce(40)]);
      await swapped;
      const swappedAt = performance.now();
      await produce(10);

      const outcomes = await Promise.all(added.map(async (id) => (await queue.getJob(id))!.waitUntilFinished(events, 90_000) as Promise<JobOutcome>));
      expect(failed).toEqual([]);
      expect(outcomes).toHaveLength(80);
      const expectedHash = (await env.registry.fetchArtifact(TASK, next)).contentHash;
      for (const outcome of outcomes) {
        if (outcome.startedAt < promotedAt) expect(outcome.version).toBe(seeded);
        if (outcome.startedAt > swappedAt) expect(outcome).toMatchObject({ version: next, contentHash: expectedHash });
      }
      // Once a job began on the new model, no job that began later got the old one.
      const byStart = [...outcomes].sort((a, b) => a.startedAt - b.startedAt).map((o) => o.version);
      const firstNew = byStart.indexOf(next);
      expect(firstNew).toBeGreaterThan(0);
      expect(byStart.slice(firstNew).every((v) => v === next)).toBe(true);
      expect(await metrics.getSingleMetricAsString('btd_model_served_info')).toContain(`version="${next}"`);
    } finally {
      await worker.close();
      await queue.close();
      await events.close();
    }
  }, 240_000);

  it('retries a promoted model whose load met unavailable model threads, instead of refusing it', async () => {
    let failNext = false;
    const refused: string[] = [];
    const retrying = await startProvider({
      metrics: new MetricsRegistry(),
      verifyOnThread: false,
      load: async (files) => {
        if (!failNext) return loadModel(files);
        failNext = false;
        throw new ModelRuntimeUnavailableError('model thread exited with code 1');
      },
    });
    try {
      retrying.on('refused', (event: { version: string }) => refused.push(event.version));
      failNext = true;
      const next = await publish();
      await env.registry.promote(TASK, next, { by: 'test', reason: 'promoted while the threads were down' });
      await retrying.refresh(TASK);
      await retrying.refresh(TASK);
      expect(refused).toEqual([]);
      expect(retrying.current(TASK).version).toBe(next);
    } finally {
      await retrying.close();
    }
  });

  it('disposes a promoted model that finishes loading while the worker shuts down', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let holding = false;
    let loaded = 0;
    const slow = await startProvider({
      metrics: new MetricsRegistry(),
      verifyOnThread: false,
      load: async (files) => {
        if (holding) await held;
        const model = await loadModel(files);
        loaded += 1;
        return { manifest: model.manifest, predict: (image, options) => model.predict(image, options), dispose: () => ((loaded -= 1), model.dispose()) };
      },
    });
    holding = true;
    const next = await publish();
    await env.registry.promote(TASK, next, { by: 'test', reason: 'promoted during shutdown' });
    const refreshing = slow.refresh(TASK);
    await sleep(50);
    const closing = slow.close();
    await sleep(50);
    release();
    await Promise.all([closing, refreshing]);
    expect(loaded).toBe(0);
  });

  it('lets a job that took the old model finish on it, then disposes the old model', async () => {
    const lease = provider.acquire(TASK);
    const next = await publish();
    const swapped = swapTo(next);
    await env.registry.promote(TASK, next, { by: 'test', reason: 'x' });
    await swapped;
    await sleep(100); // past the grace period: only the lease keeps the old model alive
    const image = mriSlices('no', 1)[0]!.bytes;
    await expect(lease.model.predict(image, { heatmap: false })).resolves.toMatchObject({ label: expect.any(String) });
    expect(provider.current(TASK).version).toBe(next);
    lease.release();
    await sleep(100);
    await expect(lease.model.predict(image, { heatmap: false })).rejects.toThrow(/disposed/);
  });
});

describe('refusing broken artifacts', () => {
  it.each([
    ['scrambled weights', scrambleWeights, /probe prediction failed: .*gave NaN/],
    ['weights that answer otherwise than its probe record', answerOtherwise, /probe image gives tumor=0\.99\d\d, manifest expects 0\.\d+/],
    ['a manifest that claims another input size', claimWrongInputSize, /does not load: .*does not match/],
  ])('keeps serving the old model when the promoted one has %s, and reports it', async (_what, breakIt, reason) => {
    const broken = await publish(breakIt);
    const refused = new Promise<{ version: string; reason: string }>((resolve) => provider.once('refused', resolve));
    await env.registry.promote(TASK, broken, { by: 'test', reason: 'x' });

    expect(await refused).toMatchObject({ version: broken, reason: expect.stringMatching(reason) });
    expect(provider.current(TASK).version).toBe(seeded);
    await expect(provider.current(TASK).predict(mriSlices('yes', 1)[0]!.bytes, { heatmap: false })).resolves.toBeTruthy();
    await expect.poll(async () => (await env.registry.status(TASK, broken))?.state, { timeout: 15_000 }).toBe('refused');
    expect((await env.registry.refusals(TASK, broken))[0]).toMatchObject({ by: 'worker-test', reason: expect.stringMatching(reason) });
    expect(await metrics.getSingleMetricAsString('btd_model_refusals_total')).toMatch(/task="tumor-binary"} 1/);
    // Polling again does not reload (and re-report) the refused version.
    await provider.refresh(TASK);
    expect(await env.registry.refusals(TASK, broken)).toHaveLength(1);
  });

  it('starts on the newest promotion that verifies when the promoted one is broken', async () => {
    const broken = await publish(scrambleWeights);
    await env.registry.promote(TASK, broken, { by: 'test', reason: 'x' });
    const second = await startProvider({ workerId: 'late-starter', metrics: new MetricsRegistry() });
    try {
      expect(second.current(TASK).version).toBe(seeded);
      expect((await env.registry.refusals(TASK, broken)).map((r) => r.by)).toContain('late-starter');
    } finally {
      await second.close();
    }
  });

  it('starts on the newest promotion that verifies when the promoted one was removed from the bucket, and reports it', async () => {
    const removed = await publish();
    const swapped = swapTo(removed);
    await env.registry.promote(TASK, removed, { by: 'test', reason: 'x' });
    await swapped;
    // Every object of the version goes, its digest too: by hand, or by a lifecycle rule.
    await env.store.deletePrefix(registryKeys.version(TASK, removed));
    const lateMetrics = new MetricsRegistry();
    const second = await startProvider({ workerId: 'late-starter', metrics: lateMetrics });
    try {
      expect(second.current(TASK).version).toBe(seeded);
      expect(await env.registry.refusals(TASK, removed)).toEqual([
        expect.objectContaining({ by: 'late-starter', reason: 'removed from the registry: content-hash.json is missing from the store' }),
      ]);
      expect(await lateMetrics.getSingleMetricAsString('btd_model_refusals_total')).toMatch(/task="tumor-binary"} 1/);
      // The worker that loaded the version before it went keeps serving it.
      expect(provider.current(TASK).version).toBe(removed);
    } finally {
      await second.close();
    }
  });

  it('keeps serving the old model when a notice names a version removed from the bucket, and reports it once', async () => {
    const removed = await publish();
    // Promoted where this worker does not hear it, then removed before the notice reaches it.
    const deaf = new ModelRegistry({ store: env.store, redis: env.redis, namespace: `${env.prefix}-elsewhere` });
    const record = await deaf.promote(TASK, removed, { by: 'test', reason: 'x' });
    await env.store.deletePrefix(registryKeys.version(TASK, removed));
    const refused: unknown[] = [];
    provider.on('refused', (event) => refused.push(event));
    const { version, contentHash, sequence, action } = record;
    await announcePromotion(env.redis, env.prefix, { task: TASK, version, contentHash, sequence, action });

    const reason = 'removed from the registry: content-hash.json is missing from the store';
    await expect.poll(() => refused, { timeout: 15_000 }).toEqual([{ task: TASK, version: removed, reason }]);
    expect(provider.current(TASK).version).toBe(seeded);
    await expect(provider.current(TASK).predict(mriSlices('yes', 1)[0]!.bytes, { heatmap: false })).resolves.toBeTruthy();
    expect(await metrics.getSingleMetricAsString('btd_model_refusals_total')).toMatch(/task="tumor-binary"} 1/);
    // Polling again neither retries nor re-reports the removed version.
    await provider.refresh(TASK);
    expect(await env.registry.refusals(TASK, removed)).toHaveLength(1);
  });
});

describe('following promotions', () => {
  it('follows a rollback', async () => {
    const next = await publish();
    const forward = swapTo(next);
    await env.registry.promote(TASK, next, { by: 'test', reason: 'x' });
    await forward;
    const back = swapTo(seeded);
    await env.registry.rollback(TASK, { by: 'ops', reason: 'regression' });
    await back;
    expect(provider.snapshot()[TASK]?.version).toBe(seeded);
  });

  it('finds a promotion by polling when the notice never arrives', async () => {
    await provider.close();
    provider = await startProvider({ pollIntervalMs: 200, metrics: new MetricsRegistry() });
    const next = await publish();
    // A promoter on another namespace shares the bucket but announces on a channel nobody hears.
    const deaf = new ModelRegistry({ store: env.store, redis: env.redis, namespace: `${env.prefix}-elsewhere` });
    const swapped = swapTo(next);
    await deaf.promote(TASK, next, { by: 'test', reason: 'x' });
    await swapped;
    expect(provider.current(TASK).version).toBe(next);
  });

  it('records the content hash it serves, matching the registry', async () => {
    const pointer = await env.registry.promoted(TASK);
    expect(provider.current(TASK).contentHash).toBe(pointer?.contentHash);
    expect(provider.current(TASK).manifest.expectedOutput?.image).toBe('probe.png');
  });
});
