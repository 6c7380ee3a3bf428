import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, inferenceJobId, overlayKey, resultKey, resultsPrefix, type ResultMessage, type ResultTimings } from '@btd/shared';
import { DirectoryModelProvider, ModelThreadPool, type ImageResultDocument, type ModelProvider, type ServedModel } from '@btd/inference-worker';
import { REPO_ROOT, datasetsDir, waitFor } from './helpers/index.js';
import { readImage, useWorkerSuite } from './worker-fixtures.js';
import { dicomFile } from './helpers/dicom-file.js';
import { noiseImage } from './helpers/noise-image.js';

const ctSlice = dicomFile({ width: 8, height: 8, pixels: new Uint16Array(64), modality: 'CT' });
const NOT_ANALYSED = /^DICOM modality is CT; btd analyses MR slices$/;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const suite = useWorkerSuite();

function expectSucceeded(message: ResultMessage): asserts message is Extract<ResultMessage, { kind: 'succeeded' }> {
  expect(message.kind, JSON.stringify(message)).toBe('succeeded');
}

/** The parts of a result's timings add up to no more than its total, as shown (to 0.1 ms). */
function expectTotalHoldsParts(timings: ResultTimings): void {
  const tenths = (ms: number) => Math.round(ms * 10);
  const { totalMs, ...parts } = timings;
  const sum = Object.values(parts).reduce((total, ms) => total + tenths(ms), 0);
  expect(sum, JSON.stringify(timings)).toBeLessThanOrEqual(tenths(totalMs));
}

describe('inference worker against Redis and s3rver', () => {
  it('holds the models a job took until the job is done, so that a promotion meanwhile cannot dispose them', async () => {
    const { env, models, tumourImage } = suite;
    let held = 0;
    let heldWhilePredicting = 0;
    const leasing: ModelProvider = {
      acquire: (task) => {
        const lease = models.acquire(task);
        held += 1;
        const predict: ServedModel['predict'] = (image, options) => ((heldWhilePredicting = Math.max(heldWhilePredicting, held)), lease.model.predict(image, options));
        return { model: { ...lease.model, predict }, release: () => ((held -= 1), lease.release()) };
      },
    };
    const { imageId } = await env.submit(tumourImage, 'stat');
    env.startWorker(leasing);
    expectSucceeded(await env.resultOf(imageId));
    expect(heldWhilePredicting).toBe(2);
    // The result goes out before the job returns and lets go of its models.
    await waitFor(() => (held === 0 ? true : undefined));
  });

  it('leaves the documents of a posted result as they are when its job runs again', async () => {
    const { env, models, tumourImage } = suite;
    const { imageId, jobId } = await env.submit(tumourImage, 'stat');
    env.startWorker(models);
    const message = await env.resultOf(imageId);
    expectSucceeded(message);
    const done = await waitFor(async () => ((await env.inference.getJobState(jobId)) === 'completed' ? env.inference.getJob(jobId) : undefined));
    const { returnvalue, finishedOn } = done;
    // As after a lost lock: the job runs once more, though its result went out.
    await done.retry('completed');
    const again = await waitFor(async () => {
      const job = await env.inference.getJob(jobId);
      return job && (await job.getState()) === 'completed' && job.finishedOn !== finishedOn ? job : undefined;
    });
    expect(again.returnvalue).toEqual(returnvalue);
    const document = await env.store.getJson<ImageResultDocument>(resultKey(imageId));
    expect(document.finishedAt).toBe(message.finishedAt);
  });

  it('analyses an image: result documents, overlay and one result message', async () => {
    const { env, models, tumourImage } = suite;
    const { studyId, imageId, jobId } = await env.submit(tumourImage, 'stat');
    env.startWorker(models);
    const message = await env.resultOf(imageId);
    expectSucceeded(message);
    expect(message).toMatchObject({ studyId, imageId, clientId: 'tester', overlayKey: overlayKey(imageId) });
    expect(message.resultKeys).toEqual({ 'tumor-binary': resultKey(imageId), 'tumor-type': resultKey(imageId) });

    const { summary } = message;
    expect(Object.keys(summary.probabilities).sort()).toEqual(['no_tumor', 'tumor']);
    expect(summary.tumorProbability).toBeCloseTo(summary.probabilities.tumor as number, 6);
    expect(Object.keys(summary.typeProbabilities).sort()).toEqual(['glioma', 'meningioma', 'no_tumor', 'pituitary']);
    expect(summary.models.map((m) => `${m.task}@${m.version}`)).toEqual(['tumor-binary@test-1', 'tumor-type@test-1']);
    expect(summary.timings.modelMs).toBeGreaterThan(0);
    expectTotalHoldsParts(summary.timings);

    const document = await env.store.getJson<ImageResultDocument>(resultKey(imageId));
    expect(document).toMatchObject({ imageId, studyId, finishedAt: message.finishedAt });
    const binary = document.tasks['tumor-binary']!;
    expect(binary).toMatchObject({ imageId, studyId, task: 'tumor-binary', label: summary.label, probabilities: summary.probabilities });
    expect(binary.model.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(document.tasks['tumor-type']!.label).toBe(summary.typeLabel);
    const overlay = await env.store.get(overlayKey(imageId));
    expect(overlay.subarray(0, 8)).toEqual(PNG_SIGNATURE);

    const job = await waitFor(async () => ((await env.inference.getJobState(jobId)) === 'completed' ? env.inference.getJob(jobId) : undefined));
    expect(job.attemptsMade).toBe(1); // one attempt, the successful one
    expect(job.returnvalue).toEqual({ label: summary.label, tumorProbability: summary.tumorProbability, typeLabel: summary.typeLabel });
  });

  it('is idempotent: a repeated job rewrites the same objects and posts no second result', async () => {
    const { env, models, tumourImage } = suite;
    const { imageId, jobId } = await env.submit(tumourImage);
    env.startWorker(models);
    const first = await env.resultOf(imageId);
    await waitFor(async () => (await env.inference.getJobState(jobId)) === 'completed');
    // Simulate a redelivery: the same payload under the same job id after the first run completed.
    const job = await env.inference.getJob(jobId);
    await job?.remove();
    await env.inference.add('infer', job!.data, { jobId: inferenceJobId(imageId) });
    await waitFor(async () => (await env.inference.getJobState(jobId)) === 'completed');

    expect((await env.store.listKeys(resultsPrefix(imageId))).sort()).toEqual(
      [overlayKey(imageId), resultKey(imageId)].sort(),
    );
    const counts = await env.results.getJobCounts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1);
    expect((await env.resultOf(imageId)).finishedAt).toBe(first.finishedAt);
  });

  it('runs stat jobs before routine ones', async () => {
    const { env, models, tumourImage } = suite;
    const routine = [await env.submit(tumourImage, 'routine'), await env.submit(tumourImage, 'routine')];
    const stat = await env.submit(tumourImage, 'stat');
    env.startWorker(models, { concurrency: 1 });
    await waitFor(async () => (await env.inference.getCompletedCount()) === 3);
    const finishedOn = async (jobId: string) => (await env.inference.getJob(jobId))?.finishedOn ?? Infinity;
    const statDone = await finishedOn(stat.jobId);
    for (const { jobId } of routine) expect(statDone).toBeLessThan(await finishedOn(jobId));
  });

  it.each([
    ['a text file', new TextEncoder().encode('this is not an image, whatever the extension says'), /^not a decodable image: (?!not a decodable image)/],
    ['a truncated JPEG', 'truncate', /not a decodable image/],
    ['zero bytes', new Uint8Array(0), /^not a decodable image: empty file \(0 bytes\)$/],
    ['a CT slice in DICOM', ctSlice, NOT_ANALYSED],
  ] as const)('fails %s once, without retries, and posts the reason', async (_name, input, reason) => {
    const { env, models, tumourImage } = suite;
    const image = input === 'truncate' ? tumourImage.subarray(0, 600) : input;
    const { imageId, jobId } = await env.submit(image);
    env.startWorker(models);
    const message = await env.resultOf(imageId);
    expect(message.kind).toBe('failed');
    expect(message.kind === 'failed' && message.reason).toMatch(reason);
    await waitFor(async () => (await env.inference.getJobState(jobId)) === 'failed');
    const job = await env.inference.getJob(jobId);
    expect(job?.attemptsMade).toBe(1);
    expect(job?.failedReason).toMatch(reason);
    expect(await env.store.listKeys(resultsPrefix(imageId))).toEqual([]);
  });

  it('fails a job whose original is missing without retrying', async () => {
    const { env, models, tumourImage } = suite;
    const { imageId, jobId } = await env.submit(tumourImage);
    const job = await env.inference.getJob(jobId);
    await env.store.delete(job!.data.objectKey);
    env.startWorker(models);
    const message = await env.resultOf(imageId);
    expect(message.kind === 'failed' && message.reason).toMatch(/missing from storage/);
    // The failure is posted before the job is marked failed: wait for the mark.
    await waitFor(async () => (await env.inference.getJobState(jobId)) === 'failed');
    expect((await env.inference.getJob(jobId))?.attemptsMade).toBe(1);
  });

  it('with the models on a pool of threads, gives the in-process result and still fails undecodable or unsupported input at once', async () => {
    const { env, models, modelsDir, tumourImage } = suite;
    const inProcess = env.startWorker(models);
    const first = await env.submit(tumourImage);
    const expected = await env.resultOf(first.imageId);
    await inProcess.close();
    expectSucceeded(expected);

    const pool = ModelThreadPool.start(2, 'wasm');
    const threaded = await DirectoryModelProvider.load(modelsDir, createLogger({ name: 'models', level: 'silent', pretty: false }), {
      load: (files) => pool.load(files),
    });
    try {
      env.startWorker(threaded, { modelThreads: true });
      const again = await env.submit(tumourImage);
      const bogus = await env.submit(new TextEncoder().encode('not an image'));
      const ct = await env.submit(ctSlice);
      const message = await env.resultOf(again.imageId);
      expectSucceeded(message);
      for (const key of ['probabilities', 'typeProbabilities'] as const) {
        for (const [label, p] of Object.entries(expected.summary[key])) expect(message.summary[key][label]).toBeCloseTo(p, 6);
      }
      const document = await env.store.getJson<ImageResultDocument>(resultKey(again.imageId));
      expect(document.tasks['tumor-binary']!.box).toEqual((await env.store.getJson<ImageResultDocument>(resultKey(first.imageId))).tasks['tumor-binary']!.box);
      const failed = await env.resultOf(bogus.imageId);
      expect(failed.kind === 'failed' && failed.reason).toMatch(/not a decodable image/);
      await waitFor(async () => (await env.inference.getJobState(bogus.jobId)) === 'failed');
      expect((await env.inference.getJob(bogus.jobId))?.attemptsMade).toBe(1);
      const refused = await env.resultOf(ct.imageId);
      expect(refused.kind === 'failed' && refused.reason).toMatch(NOT_ANALYSED);
    } finally {
      await env.close();
      await threaded.close();
      await pool.close();
      await suite.renewEnv();
    }
  });

  // Scans that send the models to their rotated copies, so that the type model's passes outlast the binary model's.
  it.skipIf(!datasetsDir())("with the shipped models side by side on a pool of threads, a result's total holds each of its parts once", async () => {
    const { env } = suite;
    const scans = await Promise.all(['yes/y110.jpg', 'yes/y379.jpg', 'no/no1102.jpg', 'no/no1182.jpg'].map((scan) => readImage(path.join(datasetsDir() as string, 'br35h', scan))));
    const pool = ModelThreadPool.start(2, 'wasm');
    const shipped = await DirectoryModelProvider.load(path.join(REPO_ROOT, 'models'), createLogger({ name: 'models', level: 'silent', pretty: false }), {
      load: (files) => pool.load(files),
    });
    try {
      const submitted = [];
      for (const scan of scans) submitted.push(await env.submit(scan));
      env.startWorker(shipped, { modelThreads: true, concurrency: 2 });
      for (const { imageId } of submitted) {
        const message = await env.resultOf(imageId);
        expectSucceeded(message);
        expectTotalHoldsParts(message.summary.timings);
      }
    } finally {
      await env.close();
      await shipped.close();
      await pool.close();
      await suite.renewEnv();
    }
  });

  it.skipIf(!datasetsDir())('with the shipped models, in process and on a pool of threads, fails an image of noise as unlike any brain MRI slice and analyses a scan', async () => {
    const { env } = suite;
    const scan = await readImage(path.join(datasetsDir() as string, 'br35h', 'yes/y110.jpg'));
    const noise = await noiseImage();
    const logger = createLogger({ name: 'models', level: 'silent', pretty: false });
    const inProcess = await DirectoryModelProvider.load(path.join(REPO_ROOT, 'models'), logger);
    const pool = ModelThreadPool.start(2, 'wasm');
    const threaded = await DirectoryModelProvider.load(path.join(REPO_ROOT, 'models'), logger, { load: (files) => pool.load(files) });
    try {
      for (const [models, config] of [[inProcess, {}], [threaded, { modelThreads: true }]] as const) {
        const refused = await env.submit(noise);
        const analysed = await env.submit(scan);
        const worker = env.startWorker(models, config);
        const failed = await env.resultOf(refused.imageId);
        expect(failed.kind === 'failed' && failed.reason).toMatch(/^image does not look like the brain MRI slices tumor-binary was trained on \(its features lie at distance [\d.]+ from theirs, above the limit of [\d.]+\)/);
        await waitFor(async () => (await env.inference.getJobState(refused.jobId)) === 'failed');
        expect((await env.inference.getJob(refused.jobId))?.attemptsMade).toBe(1);
        expect(await env.store.listKeys(resultsPrefix(refused.imageId))).toEqual([]);
        expectSucceeded(await env.resultOf(analysed.imageId));
        // The result document keeps each model's distance and limit.
        const document = await env.store.getJson<ImageResultDocument>(resultKey(analysed.imageId));
        for (const task of ['tumor-binary', 'tumor-type'] as const) {
          const typicality = document.tasks[task]!.typicality;
          expect(typicality?.distance, task).toBeLessThan(typicality!.limit);
        }
        await worker.close();
      }
    } finally {
      await env.close();
      await inProcess.close();
      await threaded.close();
      await pool.close();
      await suite.renewEnv();
    }
  });
});
