import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { SUBMISSION_LEASE_MS, type ErrorBody, type StudyView } from '@btd/api';
import { describe, expect, it } from 'vitest';
import { mriSlices } from './api-fixtures.js';
import { call, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { elapse, holdNextEnqueue, pendingStudy } from './api-killed-submission.js';
import { dicomFile, TransferSyntax, type DicomImageSpec } from './helpers/dicom-file.js';

const harness = useApiHarness();

type DicomJson = Record<string, { vr: string; Value?: Record<string, { vr: string; Value?: unknown[] }>[] | unknown[] }>;
type Item = Record<string, { vr: string; Value?: unknown[] }>;

const STUDY_A = '1.2.826.0.1.3680043.2.1143.9.1';
const STUDY_B = '1.2.826.0.1.3680043.2.1143.9.2';
const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';

/** A 12-bit DICOM instance of a real Br35H slice, in study `study`, with SOP instance `sop`. */
async function instance(study: string, sop: string, extra: Partial<DicomImageSpec> = {}): Promise<Buffer> {
  const [slice] = mriSlices('yes', 1);
  const grey = await sharp(slice!.bytes).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  const { width, height } = grey.info;
  const pixels = Uint16Array.from(grey.data, (v) => v * 16);
  return dicomFile({ width, height, pixels, bitsStored: 12, identifiers: { studyInstanceUid: study, seriesInstanceUid: `${study}.1`, sopInstanceUid: sop }, ...extra });
}

/** A `multipart/related; type="application/dicom"` body, as a STOW-RS client sends it. */
function stowBody(parts: { bytes: Uint8Array; type?: string }[]): { body: Buffer; contentType: string } {
  const boundary = `stow-${randomBytes(8).toString('hex')}`;
  const chunks = parts.flatMap(({ bytes, type = 'application/dicom' }) => [Buffer.from(`--${boundary}\r\nContent-Type: ${type}\r\n\r\n`), Buffer.from(bytes), Buffer.from('\r\n')]);
  return { body: Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

async function stow(path: string, parts: { bytes: Uint8Array; type?: string }[], headers: Record<string, string> = {}) {
  const { body, contentType } = stowBody(parts);
  const response = await fetch(`${harness.env.url}${path}`, { method: 'POST', headers: { ...harness.env.auth('alice'), 'content-type': contentType, ...headers }, body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : {}) as DicomJson };
}

const items = (body: DicomJson, tag: string) => (body[tag]?.Value ?? []) as Item[];
const sopOf = (item: Item) => item['00081155']?.Value?.[0];
const studyIdOf = (item: Item) => String(item['00081190']?.Value?.[0]).split('/v1/studies/')[1];

async function inferenceJobs(): Promise<number> {
  const counts = await harness.env.api.ctx.queues.inference.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

describe('POST /v1/dicomweb/studies (STOW-RS)', () => {
  it('stores the instances of each DICOM study as one btd study, reports the others with their reasons, and answers a retry with the same studies', async () => {
    await harness.startWorker();
    const parts = [
      { bytes: await instance(STUDY_A, `${STUDY_A}.1.1`) },
      { bytes: await instance(STUDY_B, `${STUDY_B}.1.1`, { orientation: [0, 1, 0, 0, 0, -1] }) },
      { bytes: await instance(STUDY_A, `${STUDY_A}.1.2`, { transferSyntax: TransferSyntax.implicitLittle }) },
      { bytes: await instance(STUDY_A, `${STUDY_A}.1.3`, { modality: 'CT' }) },
      { bytes: dicomFile({ width: 8, height: 8, encapsulated: new Uint8Array(64), transferSyntax: TransferSyntax.jpeg2000, identifiers: { studyInstanceUid: STUDY_A, sopInstanceUid: `${STUDY_A}.1.4` } }) },
      { bytes: mriSlices('no', 1)[0]!.bytes, type: 'image/jpeg' },
      { bytes: await instance(STUDY_A, `${STUDY_A}.1.1`) },
    ];
    const answer = await stow('/v1/dicomweb/studies?priority=stat', parts);
    expect(answer.status).toBe(202);
    expect(answer.headers.get('content-type')).toMatch(/^application\/dicom\+json/);

    const stored = items(answer.body, '00081199');
    expect(stored.map(sopOf)).toEqual([`${STUDY_A}.1.1`, `${STUDY_B}.1.1`, `${STUDY_A}.1.2`]);
    expect(stored.every((item) => item['00081150']?.Value?.[0] === MR_IMAGE_STORAGE)).toBe(true);
    const [studyA, studyB, studyA2] = stored.map(studyIdOf);
    expect(studyA).toBe(studyA2);
    expect(studyB).not.toBe(studyA);

    const failed = items(answer.body, '00081198');
    const reasons = failed.map((item) => [sopOf(item) ?? null, item['00081197']?.Value?.[0], String(item['00000902']?.Value?.[0])]);
    expect(reasons).toEqual([
      [`${STUDY_A}.1.3`, 0x0122, expect.stringContaining('DICOM modality is CT')],
      [`${STUDY_A}.1.4`, 0xc000, expect.stringContaining('JPEG 2000 pixel data cannot be decoded')],
      [null, 0xc000, 'part 6 is image/jpeg; send each instance as application/dicom'],
      [`${STUDY_A}.1.1`, 0x0110, `SOP instance ${STUDY_A}.1.1 is sent twice in this request`],
    ]);

    // Each btd study holds its DICOM study's instances, is analysed, and reports them by UID.
    const views = await Promise.all([studyA!, studyB!].map(async (id) => waitForStudy(harness.env, 'alice', id)));
    expect(views.map((view) => view.images.map((image) => image.dicom?.sopInstanceUid))).toEqual([[`${STUDY_A}.1.1`, `${STUDY_A}.1.2`], [`${STUDY_B}.1.1`]]);
    expect(views.every((view: StudyView) => view.state === 'done' && view.priority === 'stat')).toBe(true);
    expect(views[0]!.images[0]!.result!.tumorProbability).toBe(views[0]!.images[1]!.result!.tumorProbability);
    // Study B's slice is sagittal: its result and the study's verdict say not to rely on it.
    expect(views.map((view) => view.verdict!.cautions)).toEqual([[], ['plane_not_axial']]);
    expect(views[1]!.images[0]!.result!.cautions.map((caution) => caution.code)).toEqual(['plane_not_axial']);
    const jobs = await inferenceJobs();
    expect(jobs).toBe(3);

    // A PACS retrying the same request gets the same studies back, and no new work is queued.
    const retry = await stow('/v1/dicomweb/studies?priority=stat', parts);
    expect(retry.status).toBe(202);
    expect(items(retry.body, '00081199').map(studyIdOf)).toEqual([studyA, studyB, studyA]);
    expect(await inferenceJobs()).toBe(jobs);

    // So does one resending the instances it stored in another order.
    const reordered = await stow('/v1/dicomweb/studies?priority=stat', [parts[2]!, parts[1]!, parts[0]!]);
    expect(reordered.status).toBe(200);
    expect(items(reordered.body, '00081199').map((item) => [sopOf(item), studyIdOf(item)])).toEqual([
      [`${STUDY_A}.1.2`, studyA],
      [`${STUDY_B}.1.1`, studyB],
      [`${STUDY_A}.1.1`, studyA],
    ]);
    expect(await inferenceJobs()).toBe(jobs);
  });

  it('stores the instances of two studies sent with one long Idempotency-Key as two studies', async () => {
    const key = 'k'.repeat(255);
    const parts = [{ bytes: await instance(STUDY_A, `${STUDY_A}.4.1`) }, { bytes: await instance(STUDY_B, `${STUDY_B}.4.1`) }];
    const answer = await stow('/v1/dicomweb/studies', parts, { 'idempotency-key': key });
    expect(answer.status).toBe(200);
    const studies = items(answer.body, '00081199').map(studyIdOf);
    expect(new Set(studies).size).toBe(2);
    const retry = await stow('/v1/dicomweb/studies', parts, { 'idempotency-key': key });
    expect(items(retry.body, '00081199').map(studyIdOf)).toEqual(studies);
  });

  it('answers the same instances, resent after the API was killed before enqueueing their jobs, with the study it stored, analysed once', async () => {
    const parts = [{ bytes: await instance(STUDY_A, `${STUDY_A}.6.1`) }, { bytes: await instance(STUDY_A, `${STUDY_A}.6.2`) }];
    const held = holdNextEnqueue(harness.env);
    const first = stow('/v1/dicomweb/studies', parts);
    const studyId = await pendingStudy(harness.env);
    try {
      await elapse(harness.env, SUBMISSION_LEASE_MS + 60_000);
      const retry = await stow('/v1/dicomweb/studies', [parts[1]!, parts[0]!]);
      expect([retry.status, retry.headers.get('location')]).toEqual([200, `/v1/studies/${studyId}`]);
      expect(items(retry.body, '00081199').map(studyIdOf)).toEqual([studyId, studyId]);
    } finally {
      held.fail();
      await first;
    }
    await harness.startWorker();
    expect((await waitForStudy(harness.env, 'alice', studyId)).state).toBe('done');
    expect(await inferenceJobs()).toBe(2);
    const listed = await call<{ total: number }>(harness.env, 'alice', 'GET', '/v1/studies');
    expect(listed.body.total).toBe(1);
  });

  it('stores instances framed as dicomweb-client frames them: a CRLF before the first delimiter, a quoted boundary, no CRLF after the last', async () => {
    const boundary = `client-${randomBytes(8).toString('hex')}`;
    const bytes = await instance(STUDY_A, `${STUDY_A}.5.1`);
    const body = Buffer.concat([Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), bytes, Buffer.from(`\r\n--${boundary}--`)]);
    const response = await fetch(`${harness.env.url}/v1/dicomweb/studies`, {
      method: 'POST',
      headers: { ...harness.env.auth('alice'), 'content-type': `multipart/related; type="application/dicom"; boundary="${boundary}"` },
      body,
    });
    const answer = (await response.json()) as DicomJson;
    expect(response.status).toBe(200);
    expect(items(answer, '00081199').map(sopOf)).toEqual([`${STUDY_A}.5.1`]);
  });

  it('stores a multi-frame instance as one image per frame of its study', async () => {
    const bytes = readFileSync(new URL('./fixtures/dicom/jpeg-ls-lossless-3-frames.dcm', import.meta.url));
    const answer = await stow('/v1/dicomweb/studies', [{ bytes }]);
    expect(answer.status).toBe(200);
    const [stored] = items(answer.body, '00081199');
    expect(sopOf(stored!)).toBe('1.2.826.0.1.3680043.2.1143.7.2.1.1');
    const view = await call<StudyView>(harness.env, 'alice', 'GET', `/v1/studies/${studyIdOf(stored!)}`);
    expect(view.body.images.map((image) => image.dicom?.frameNumber)).toEqual([1, 2, 3]);
  });

  it('refuses, under /studies/{uid}, the instances of another study, and answers 409 storing nothing when no instance is stored', async () => {
    const answer = await stow(`/v1/dicomweb/studies/${STUDY_B}`, [{ bytes: await instance(STUDY_A, `${STUDY_A}.2.1`) }, { bytes: await instance(STUDY_B, `${STUDY_B}.2.1`) }]);
    expect(answer.status).toBe(202);
    expect(answer.headers.get('location')).toMatch(/^\/v1\/studies\/stu_/);
    expect(answer.body['00081190']?.Value?.[0]).toMatch(/\/v1\/studies\/stu_/);
    const [wrong] = items(answer.body, '00081198');
    expect([sopOf(wrong!), wrong!['00081197']?.Value?.[0], wrong!['00000902']?.Value?.[0]]).toEqual([
      `${STUDY_A}.2.1`,
      0xa900,
      `instance belongs to study ${STUDY_A}, not to ${STUDY_B} of the URL`,
    ]);

    const before = await harness.env.objectKeys();
    const video = dicomFile({ width: 8, height: 8, bitsAllocated: 8, encapsulated: new Uint8Array(64), transferSyntax: TransferSyntax.mpeg4, identifiers: { studyInstanceUid: STUDY_A, sopInstanceUid: `${STUDY_A}.2.2` } });
    const none = await stow('/v1/dicomweb/studies', [{ bytes: Buffer.from('not a DICOM file at all') }, { bytes: video }]);
    expect(none.status).toBe(409);
    const [text, cine] = items(none.body, '00081198');
    expect([text!['00081197']?.Value?.[0], text!['00000902']?.Value?.[0]]).toEqual([0xc000, expect.stringMatching(/accepted: JPEG, PNG or DICOM/)]);
    expect([cine!['00081197']?.Value?.[0], cine!['00000902']?.Value?.[0]]).toEqual([0xc122, expect.stringMatching(/MPEG-4 video/)]);
    expect(await harness.env.objectKeys()).toEqual(before);
  });

  it('reports a blank instance as failed, with the reason, and stores the others of its study', async () => {
    const blank = await instance(STUDY_A, `${STUDY_A}.4.2`, { pixels: new Uint16Array(64 * 64).fill(900), width: 64, height: 64 });
    const answer = await stow('/v1/dicomweb/studies', [{ bytes: await instance(STUDY_A, `${STUDY_A}.4.1`) }, { bytes: blank }]);
    expect(answer.status).toBe(202);
    expect(items(answer.body, '00081199').map(sopOf)).toEqual([`${STUDY_A}.4.1`]);
    expect(items(answer.body, '00081198').map((item) => [sopOf(item), item['00081197']?.Value?.[0], item['00000902']?.Value?.[0]])).toEqual([
      [`${STUDY_A}.4.2`, 0xc000, `"${STUDY_A}.4.2.dcm": is blank: every pixel has grey level 0, so there is nothing to analyse`],
    ]);
    expect(await inferenceJobs()).toBe(1);
    expect(await harness.env.objectKeys()).toHaveLength(1);
  });

  it('answers a request that is not a STOW-RS request with the reason', async () => {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(await instance(STUDY_A, `${STUDY_A}.3.1`))]), 'a.dcm');
    const formData = await call<ErrorBody>(harness.env, 'alice', 'POST', '/v1/dicomweb/studies', { body: form });
    expect([formData.status, formData.body.code]).toEqual([415, 'unsupported_media_type']);
    expect(formData.body.message).toMatch(/send DICOM instances as multipart\/related; type="application\/dicom"/);

    const metadata = await stow('/v1/dicomweb/studies', [{ bytes: await instance(STUDY_A, `${STUDY_A}.3.1`) }], {
      'content-type': 'multipart/related; type="application/dicom+json"; boundary=x',
    });
    expect(metadata.status).toBe(415);

    const cut = stowBody([{ bytes: await instance(STUDY_A, `${STUDY_A}.3.1`) }]);
    const truncated = await fetch(`${harness.env.url}/v1/dicomweb/studies`, {
      method: 'POST',
      headers: { ...harness.env.auth('alice'), 'content-type': cut.contentType },
      body: cut.body.subarray(0, cut.body.length - 20),
    });
    expect([truncated.status, ((await truncated.json()) as ErrorBody).code]).toEqual([400, 'malformed_multipart']);

    const xml = await stow('/v1/dicomweb/studies', [{ bytes: await instance(STUDY_A, `${STUDY_A}.3.1`) }], { accept: 'application/dicom+xml' });
    expect([xml.status, (xml.body as unknown as ErrorBody).code]).toEqual([406, 'not_acceptable']);

    const badField = await stow('/v1/dicomweb/studies?priority=urgent', [{ bytes: await instance(STUDY_A, `${STUDY_A}.3.1`) }]);
    expect(badField.status).toBe(400);

    const anonymous = await fetch(`${harness.env.url}/v1/dicomweb/studies`, { method: 'POST', headers: { 'content-type': cut.contentType }, body: cut.body });
    expect(anonymous.status).toBe(401);
    expect(await harness.env.objectKeys()).toEqual([]);
    expect(await inferenceJobs()).toBe(0);
  });
});
