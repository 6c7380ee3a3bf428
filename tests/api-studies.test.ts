import { readFileSync } from 'node:fs';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import type { StudyView, SubmittedStudy } from '@btd/api';
import { describe, expect, it } from 'vitest';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { dicomFile } from './helpers/dicom-file.js';

const harness = useApiHarness();

describe('POST /v1/studies → result', () => {
  it('analyses an uploaded slice and serves its result and overlay', async () => {
    await harness.startWorker();
    const [slice] = mriSlices('yes', 1);
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([{ name: slice!.name, bytes: slice!.bytes }], { externalId: 'ACC-1001', priority: 'stat' }),
    });
    expect(submitted.status).toBe(202);
    const { studyId, images } = submitted.body;
    expect(submitted.headers.get('location')).toBe(`/v1/studies/${studyId}`);
    expect(images).toHaveLength(1);

    const study = await waitForStudy(harness.env, 'alice', studyId);
    expect(study.state).toBe('done');
    expect(study.externalId).toBe('ACC-1001');
    const [image] = study.images;
    expect(image?.state).toBe('done');
    const result = image!.result!;
    expect(['tumor', 'no_tumor']).toContain(result.label);
    expect(result.tumorProbability).toBeCloseTo(result.probabilities.tumor!, 6);
    expect(Object.keys(result.type.probabilities).sort()).toEqual(['glioma', 'meningioma', 'no_tumor', 'pituitary']);
    expect(result.type.agreesWithDetection).toBe((result.label === 'tumor') === (result.type.label !== 'no_tumor'));
    expect(result.models.map((model) => model.task).sort()).toEqual(['tumor-binary', 'tumor-type']);
    expect(result.timings.totalMs).toBeGreaterThan(0);

    const overlay = await fetch(`${harness.env.url}${result.overlayUrl}`, { headers: harness.env.auth('alice') });
    expect(overlay.status).toBe(200);
    expect(overlay.headers.get('content-type')).toBe('image/png');
    const metadata = await sharp(Buffer.from(await overlay.arrayBuffer())).metadata();
    const original = await sharp(slice!.bytes).metadata();
    expect([metadata.format, metadata.width, metadata.height]).toEqual(['png', original.width, original.height]);

    const metrics = await (await fetch(`${harness.env.url}/metrics`)).text();
    expect(metrics).toContain('btd_http_requests_total{method="POST",route="/v1/studies",status_code="202"} 1');
    expect(metrics).toMatch(/btd_http_request_duration_seconds_count\{method="GET",route="\/v1\/studies\/:id",status_code="200"\} [1-9]/);
    expect(metrics).toContain('btd_queue_jobs{queue="inference",state="completed"} 1');
    expect(metrics).toContain('btd_queue_workers{queue="inference"} 1');
    expect(metrics).toContain('btd_queue_workers{queue="results"} 1');
    expect(metrics).toContain(`btd_results_total{label="${result.label}"} 1`);
    expect(metrics).toContain('btd_job_duration_seconds_count{queue="inference"} 1');
    expect(metrics).toContain('btd_submit_to_result_seconds_count 1');
  });

  it('reads a 16-bit PNG export and a DICOM file of a slice, 12 bits used, as the slice itself', async () => {
    await harness.startWorker();
    const [slice] = mriSlices('yes', 1);
    const grey = await sharp(slice!.bytes).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    // Windowing maps the lowest and highest stored values to 0 and 255, so this slice must span them.
    expect([Math.min(...grey.data), Math.max(...grey.data)]).toEqual([0, 255]);
    const scanner = Uint16Array.from(grey.data, (v) => v * 16);
    const { width, height } = grey.info;
    const png = await sharp(scanner, { raw: { width, height, channels: 1 } }).toColourspace('grey16').png().toBuffer();
    const identifiers = { studyInstanceUid: '1.2.826.0.1.99.1', seriesInstanceUid: '1.2.826.0.1.99.1.2', sopInstanceUid: '1.2.826.0.1.99.1.2.3', accessionNumber: 'ACC-4711' };
    const dicom = dicomFile({ width, height, pixels: scanner, bitsStored: 12, window: { center: 2040.5, width: 4081 }, identifiers, orientation: [1, 0, 0, 0, 1, 0] });
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([
        { name: slice!.name, bytes: slice!.bytes },
        { name: 'export-12bit.png', bytes: png, type: 'image/png' },
        { name: 'slice.dcm', bytes: dicom, type: 'application/dicom' },
      ]),
    });
    expect(submitted.status).toBe(202);
    const keys = await harness.env.objectKeys();
    expect(keys.filter((key) => key.startsWith(`originals/alice/${submitted.body.studyId}/`))).toHaveLength(3);
    const study = await waitForStudy(harness.env, 'alice', submitted.body.studyId);
    expect(study.images.map((image) => image.dicom)).toEqual([undefined, undefined, { ...identifiers, plane: 'axial' }]);
    expect(study.images[2]).toMatchObject({ contentType: 'application/dicom', width, height });
    expect(study.images.map((image) => image.result!.cautions)).toEqual([[], [], []]);
    const [jpeg, ...others] = study.images.map((image) => image.result!);
    expect(study.verdict).toMatchObject({
      label: jpeg!.label,
      tumorProbability: Math.max(...study.images.map((image) => image.result!.tumorProbability)),
      tumorImages: jpeg!.label === 'tumor' ? 3 : 0,
      analysedImages: 3,
      failedImages: 0,
    });
    const brightness = async (overlayUrl: string) => {
      const overlay = await fetch(`${harness.env.url}${overlayUrl}`, { headers: harness.env.auth('alice') });
      return (await sharp(Buffer.from(await overlay.arrayBuffer())).stats()).channels[1]!.mean;
    };
    // The overlay as a DICOM Secondary Capture: in the slice's study, pointing at it, pixel for pixel the PNG overlay.
    const dicomImage = study.images[2]!;
    const capture = await fetch(`${harness.env.url}${dicomImage.result!.overlayDicomUrl}`, { headers: harness.env.auth('alice') });
    expect([capture.status, capture.headers.get('content-type')]).toEqual([200, 'application/dicom']);
    const parsed = dicomParser.parseDicom(new Uint8Array(await capture.arrayBuffer()));
    const uid = (tag: string, data = parsed) => data.string(tag)?.replace(/\0+$/, '');
    expect([uid('x00080016'), uid('x0020000d'), uid('x00081155', parsed.elements.x00082112!.items![0]!.dataSet!)]).toEqual([
      '1.2.840.10008.5.1.4.1.1.7',
      identifiers.studyInstanceUid,
      identifiers.sopInstanceUid,
    ]);
    expect(parsed.string('x00204000')).toMatch(/^btd: (tumor|no_tumor) \(tumour probability \d\.\d{3}\); type /);
    const overlayPng = await fetch(`${harness.env.url}${dicomImage.result!.overlayUrl}`, { headers: harness.env.auth('alice') });
    const rgb = await sharp(Buffer.from(await overlayPng.arrayBuffer())).removeAlpha().raw().toBuffer();
    const pixels = parsed.elements.x7fe00010!;
    expect(Buffer.from(parsed.byteArray.subarray(pixels.dataOffset, pixels.dataOffset + pixels.length)).equals(rgb)).toBe(true);
    for (const other of others) {
      expect(other.label).toBe(jpeg!.label);
      expect(other.tumorProbability).toBeCloseTo(jpeg!.tumorProbability, 5);
      expect(other.box).toEqual(jpeg!.box);
      expect(await brightness(other.overlayUrl)).toBeCloseTo(await brightness(jpeg!.overlayUrl), 0);
    }
  });

  it('analyses DICOM slices compressed as a PACS sends them as it analyses the uncompressed slice', async () => {
    await harness.startWorker();
    const names = ['uncompressed.dcm', 'jpeg-lossless.dcm', 'jpeg-ls-lossless.dcm', 'jpeg-2000-lossless.dcm', 'rle.dcm', 'deflated.dcm'];
    const files = names.map((name) => ({ name, bytes: readFileSync(new URL(`./fixtures/dicom/${name}`, import.meta.url)), type: 'application/dicom' }));
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm(files) });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const study = await waitForStudy(harness.env, 'alice', submitted.body.studyId);
    expect(study.images.map((image) => image.state)).toEqual(names.map(() => 'done'));
    const [uncompressed, ...compressed] = study.images.map((image) => image.result!);
    for (const result of compressed) {
      expect(result.label).toBe(uncompressed!.label);
      expect(result.tumorProbability).toBe(uncompressed!.tumorProbability);
      expect(result.box).toEqual(uncompressed!.box);
    }
  });

  it('accepts and analyses DICOM in YCbCr, as 12-bit lossy JPEG and as 16-bit colour', async () => {
    await harness.startWorker();
    const names = ['uncompressed-ybr-full.dcm', 'jpeg-baseline-ybr-full-422.dcm', 'jpeg-extended-12bit.dcm', 'jpeg-lossless-rgb-16bit.dcm'];
    const files = names.map((name) => ({ name, bytes: readFileSync(new URL(`./fixtures/dicom/${name}`, import.meta.url)), type: 'application/dicom' }));
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm(files) });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const study = await waitForStudy(harness.env, 'alice', submitted.body.studyId);
    expect(study.images.map((image) => image.state)).toEqual(names.map(() => 'done'));
  });

  it('analyses each frame of a multi-frame DICOM file as an image of the study, storing the file once', async () => {
    await harness.startWorker();
    const bytes = readFileSync(new URL('./fixtures/dicom/rle-3-frames.dcm', import.meta.url));
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'series.dcm', bytes, type: 'application/dicom' }]) });
    expect(submitted.status).toBe(202);
    expect(submitted.body.images).toHaveLength(3);
    const originals = (await harness.env.objectKeys()).filter((key) => key.startsWith(`originals/alice/${submitted.body.studyId}/`));
    expect(originals).toHaveLength(1);
    const study = await waitForStudy(harness.env, 'alice', submitted.body.studyId);
    expect(study.images.map((image) => [image.state, image.dicom?.frameNumber, image.dicom?.numberOfFrames])).toEqual([
      ['done', 1, 3],
      ['done', 2, 3],
      ['done', 3, 3],
    ]);
    // The second frame is the first upside down: were every job to read the first frame, the results would match.
    const [first, second] = study.images.map((image) => ({ tumorProbability: image.result!.tumorProbability, box: image.result!.box }));
    expect(second).not.toEqual(first);
  });

  it('leaves a multi-frame file\'s blank padding frame out of the analysis, so that its slices give the study a verdict, and says which it left out, also in its study.completed webhook', async () => {
    const receiver = await harness.startReceiver();
    await harness.startWorker();
    const [slice] = mriSlices('yes', 1);
    const grey = await sharp(slice!.bytes).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    const { width, height } = grey.info;
    const frame = Uint16Array.from(grey.data, (v) => v * 16);
    const pixels = new Uint16Array(3 * frame.length);
    pixels.set(frame, 0);
    pixels.fill(120, frame.length, 2 * frame.length); // the padding frame: one stored value throughout
    pixels.set(frame.toReversed(), 2 * frame.length);
    const sopInstanceUid = '1.2.826.0.1.3680043.10.511.7';
    const bytes = dicomFile({ width, height, pixels, bitsStored: 12, frames: 3, identifiers: { sopInstanceUid } });
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([{ name: 'padded.dcm', bytes, type: 'application/dicom' }], { callbackUrl: `${receiver.url}/hooks` }),
    });
    expect(submitted.status).toBe(202);
    const skippedFrames = [{ filename: 'padded.dcm', sopInstanceUid, frameNumber: 2, numberOfFrames: 3, reason: 'blank', greyLevel: 0 }];
    expect([submitted.body.images.length, submitted.body.skippedFrames]).toEqual([2, skippedFrames]);
    const study = await waitForStudy(harness.env, 'alice', submitted.body.studyId);
    expect(study.images.map((image) => [image.state, image.dicom?.frameNumber, image.dicom?.numberOfFrames])).toEqual([
      ['done', 1, 3],
      ['done', 3, 3],
    ]);
    expect(study.skippedFrames).toEqual(skippedFrames);
    expect(study.state).toBe('done');
    expect(study.verdict).toMatchObject({ analysedImages: 2, failedImages: 0 });
    expect(study.verdict?.label).not.toBe('incomplete');
    const [hook] = await receiver.waitFor(1);
    const payload = JSON.parse(hook!.body) as { event: string; study: StudyView };
    expect([payload.event, payload.study.studyId, payload.study.skippedFrames]).toEqual(['study.completed', submitted.body.studyId, skippedFrames]);
  });

  it('stores the original under its deterministic key and enqueues one job per image', async () => {
    const slices = mriSlices('no', 3);
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm(slices.map((slice) => ({ name: slice.name, bytes: slice.bytes }))),
    });
    expect(submitted.status).toBe(202);
    const { studyId, images } = submitted.body;
    const keys = await harness.env.objectKeys();
    for (const image of images) expect(keys).toContain(`originals/alice/${studyId}/${image.imageId}`);
    const stored = await harness.env.store.get(`originals/alice/${studyId}/${images[0]!.imageId}`);
    expect(Buffer.compare(stored, slices[0]!.bytes)).toBe(0);
    expect(await harness.env.api.ctx.queues.inference.getJobCountByTypes('waiting', 'prioritized')).toBe(3);
    const study = await call<StudyView>(harness.env, 'alice', 'GET', `/v1/studies/${studyId}`);
    expect(study.body.state).toBe('queued');
    expect(study.body.priority).toBe('routine');
  });

  it('puts stat studies ahead of routine ones', async () => {
    const [first, second] = mriSlices('yes', 2);
    const routine = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'r.jpg', bytes: first!.bytes }], { priority: 'routine' }) });
    const stat = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 's.jpg', bytes: second!.bytes }], { priority: 'stat' }) });
    await harness.startWorker();
    const [statDone, routineDone] = await Promise.all([
      waitForStudy(harness.env, 'alice', stat.body.studyId),
      waitForStudy(harness.env, 'alice', routine.body.studyId),
    ]);
    expect(Date.parse(statDone.completedAt!)).toBeLessThan(Date.parse(routineDone.completedAt!));
  });
});
