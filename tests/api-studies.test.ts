import sharp from 'sharp';
import type { StudyView, SubmittedStudy } from '@btd/api';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { startApiEnv, type ApiTestEnv } from './api-test-env.js';
import { startTestS3, type TestS3 } from './helpers/index.js';
import { startTestInferenceWorker, type TestInferenceWorker } from './api-test-worker.js';

let s3: TestS3;
let env: ApiTestEnv;
let worker: TestInferenceWorker | undefined;

async function startWorker(): Promise<TestInferenceWorker> {
  worker = await startTestInferenceWorker(env);
  return worker;
}

beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3.close();
});
beforeEach(async () => {
  env = await startApiEnv(s3);
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await env.close();
});

describe('POST /v1/studies → result', () => {
  it('analyses an uploaded slice and serves its result and overlay', async () => {
    await startWorker();
    const [slice] = mriSlices('yes', 1);
    const submitted = await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([{ name: slice!.name, bytes: slice!.bytes }], { externalId: 'ACC-1001', priority: 'stat' }),
    });
    expect(submitted.status).toBe(202);
    const { studyId, images } = submitted.body;
    expect(submitted.headers.get('location')).toBe(`/v1/studies/${studyId}`);
    expect(images).toHaveLength(1);

    const study = await waitForStudy(env, 'alice', studyId);
    expect(study.state).toBe('done');
    expect(study.externalId).toBe('ACC-1001');
    const [image] = study.images;
    expect(image?.state).toBe('done');
    const result = image!.result!;
    expect(['tumor', 'no_tumor']).toContain(result.label);
    expect(result.tumorProbability).toBeCloseTo(result.probabilities.tumor!, 6);
    expect(Object.keys(result.type.probabilities).sort()).toEqual(['glioma', 'meningioma', 'no_tumor', 'pituitary']);
    expect(result.models.map((model) => model.task).sort()).toEqual(['tumor-binary', 'tumor-type']);
    expect(result.timings.totalMs).toBeGreaterThan(0);

    const overlay = await fetch(`${env.url}${result.overlayUrl}`, { headers: env.auth('alice') });
    expect(overlay.status).toBe(200);
    expect(overlay.headers.get('content-type')).toBe('image/png');
    const metadata = await sharp(Buffer.from(await overlay.arrayBuffer())).metadata();
    const original = await sharp(slice!.bytes).metadata();
    expect([metadata.format, metadata.width, metadata.height]).toEqual(['png', original.width, original.height]);

    const metrics = await (await fetch(`${env.url}/metrics`)).text();
    expect(metrics).toContain('btd_http_requests_total{method="POST",route="/v1/studies",status_code="202"} 1');
    expect(metrics).toMatch(/btd_http_request_duration_seconds_count\{method="GET",route="\/v1\/studies\/:id",status_code="200"\} [1-9]/);
    expect(metrics).toContain('btd_queue_jobs{queue="inference",state="completed"} 1');
    expect(metrics).toContain('btd_queue_workers{queue="inference"} 1');
    expect(metrics).toContain('btd_queue_workers{queue="results"} 1');
    expect(metrics).toContain(`btd_results_total{label="${result.label}"} 1`);
    expect(metrics).toContain('btd_job_duration_seconds_count{queue="inference"} 1');
    expect(metrics).toContain('btd_submit_to_result_seconds_count 1');
  });

  it('stores the original under its deterministic key and enqueues one job per image', async () => {
    const slices = mriSlices('no', 3);
    const submitted = await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', {
      body: studyForm(slices.map((slice) => ({ name: slice.name, bytes: slice.bytes }))),
    });
    expect(submitted.status).toBe(202);
    const { studyId, images } = submitted.body;
    const keys = await env.objectKeys();
    for (const image of images) expect(keys).toContain(`originals/alice/${studyId}/${image.imageId}`);
    const stored = await env.store.get(`originals/alice/${studyId}/${images[0]!.imageId}`);
    expect(Buffer.compare(stored, slices[0]!.bytes)).toBe(0);
    expect(await env.api.ctx.queues.inference.getJobCountByTypes('waiting', 'prioritized')).toBe(3);
    const study = await call<StudyView>(env, 'alice', 'GET', `/v1/studies/${studyId}`);
    expect(study.body.state).toBe('queued');
    expect(study.body.priority).toBe('routine');
  });

  it('puts stat studies ahead of routine ones', async () => {
    const [first, second] = mriSlices('yes', 2);
    const routine = await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'r.jpg', bytes: first!.bytes }], { priority: 'routine' }) });
    const stat = await call<SubmittedStudy>(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 's.jpg', bytes: second!.bytes }], { priority: 'stat' }) });
    await startWorker();
    const [statDone, routineDone] = await Promise.all([
      waitForStudy(env, 'alice', stat.body.studyId),
      waitForStudy(env, 'alice', routine.body.studyId),
    ]);
    expect(Date.parse(statDone.completedAt!)).toBeLessThan(Date.parse(routineDone.completedAt!));
  });
});
