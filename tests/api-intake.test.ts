import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import type { ErrorBody } from '@btd/api';
import { mriSlices, pngDeclaring, truncatedJpeg } from './api-fixtures.js';
import { call, studyForm, type UploadFile } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { dicomFile, TransferSyntax } from './helpers/dicom-file.js';

const MAX_UPLOAD_BYTES = 200_000;
const MAX_SUBMISSION_BYTES = 500_000;

const harness = useApiHarness({ MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES), MAX_SUBMISSION_BYTES: String(MAX_SUBMISSION_BYTES) });

/** Nothing of a rejected submission may remain: no object, no record, no job. */
async function expectNothingStored(): Promise<void> {
  expect(await harness.env.objectKeys()).toEqual([]);
  const records = (await harness.env.redisKeys()).filter((key) => key.startsWith(`${harness.env.prefix}:api:`));
  expect(records).toEqual([]);
  const jobs = await harness.env.api.ctx.queues.inference.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
  expect(Object.values(jobs).reduce((sum, n) => sum + n, 0)).toBe(0);
}

async function submit(files: UploadFile[], fields: Record<string, string> = {}, fileField = 'file') {
  return call<ErrorBody>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm(files, fields, fileField) });
}

/** A PNG of 16×16 pixels that decodes whole. */
const thumbnail = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 40, g: 90, b: 140 } } }).png().toBuffer();

/** A 64×64 image of one colour, as an all-black or all-white export is. */
const plain = (background: string) => sharp({ create: { width: 64, height: 64, channels: 3, background } });
const blackPng = await plain('#000').png().toBuffer();
const whiteJpeg = await plain('#fff').jpeg().toBuffer();
/** A black 64×64 PNG with two stray white pixels: nearly blank, which the network called a tumour with 0.6. */
const strayPixelsPng = await sharp(Uint8Array.from({ length: 64 * 64 }, (_, i) => (i === 1000 || i === 3000 ? 255 : 0)), { raw: { width: 64, height: 64, channels: 1 } })
  .png()
  .toBuffer();
/** A blank DICOM frame: every stored value the same, which the viewer's window makes black. */
const blankDicom = dicomFile({ width: 64, height: 64, pixels: new Uint16Array(64 * 64).fill(300) });

const [good] = mriSlices('yes', 1);
const goodFile = { name: 'good.jpg', bytes: good!.bytes };

describe('bad uploads are refused with a reason, leaving nothing behind', () => {
  const cases: { name: string; files: () => UploadFile[]; status: number; code: string; mentions: string }[] = [
    { name: 'a zero-byte file', files: () => [{ name: 'empty.jpg', bytes: new Uint8Array(0) }], status: 400, code: 'empty_file', mentions: 'empty' },
    { name: 'a truncated JPEG', files: () => [{ name: 'cut.jpg', bytes: truncatedJpeg() }], status: 422, code: 'image_truncated', mentions: 'truncated' },
    {
      name: 'a text file named .jpg',
      files: () => [{ name: 'notes.jpg', bytes: Buffer.from('Findings: none.\n'.repeat(40)) }],
      status: 415,
      code: 'unsupported_type',
      mentions: 'accepted: JPEG, PNG or DICOM',
    },
    {
      name: 'a PNG declaring 30000×30000 pixels',
      files: () => [{ name: 'bomb.png', bytes: pngDeclaring(30_000, 30_000), type: 'image/png' }],
      status: 422,
      code: 'image_too_large',
      mentions: '30000×30000',
    },
    {
      name: 'a DICOM video',
      files: () => [{ name: 'cine.dcm', bytes: dicomFile({ width: 64, height: 64, bitsAllocated: 8, encapsulated: new Uint8Array(64), transferSyntax: TransferSyntax.mpeg4 }), type: 'application/dicom' }],
      status: 422,
      code: 'image_unsupported',
      mentions: 'MPEG-4 video (1.2.840.10008.1.2.4.102); send it uncompressed or in a still-image encoding',
    },
    {
      name: 'a DICOM slice whose JPEG 2000 data is broken',
      files: () => [{ name: 'slice.dcm', bytes: dicomFile({ width: 64, height: 64, encapsulated: new Uint8Array(64), transferSyntax: TransferSyntax.jpeg2000 }), type: 'application/dicom' }],
      status: 422,
      code: 'image_undecodable',
      mentions: 'DICOM JPEG 2000 pixel data cannot be decoded',
    },
    {
      name: 'a multi-frame DICOM file with more frames than a study may hold images',
      files: () => [{ name: 'series.dcm', bytes: dicomFile({ width: 2, height: 2, pixels: new Uint16Array(2 * 2 * 65), frames: 65 }), type: 'application/dicom' }],
      status: 413,
      code: 'too_many_images',
      mentions: '"series.dcm": holds 65 frames, each an image; at most 64 per study',
    },
    {
      name: 'a CT slice sent as DICOM',
      files: () => [{ name: 'ct.dcm', bytes: dicomFile({ width: 8, height: 8, pixels: new Uint16Array(64), modality: 'CT' }), type: 'application/dicom' }],
      status: 422,
      code: 'image_unsupported',
      mentions: 'DICOM modality is CT; btd analyses MR slices',
    },
    {
      name: 'a DICOM header declaring 30000×30000 pixels',
      files: () => [{ name: 'bomb.dcm', bytes: dicomFile({ width: 30_000, height: 30_000, pixels: [] }), type: 'application/dicom' }],
      status: 422,
      code: 'image_too_large',
      mentions: '30000×30000',
    },
    {
      // Decodable, but the models refuse it: it is refused before it is stored and queued.
      name: 'a PNG of 16×16 pixels',
      files: () => [{ name: 'thumb.png', bytes: thumbnail, type: 'image/png' }],
      status: 422,
      code: 'image_too_small',
      mentions: '"thumb.png": is 16×16 pixels, too small to analyse: send images at least 32 pixels wide and high',
    },
    {
      name: 'a DICOM slice of 8×40 pixels',
      files: () => [{ name: 'strip.dcm', bytes: dicomFile({ width: 8, height: 40, pixels: new Uint16Array(8 * 40).map((_, i) => i) }), type: 'application/dicom' }],
      status: 422,
      code: 'image_too_small',
      mentions: 'is 8×40 pixels',
    },
    {
      // Decodable, but blank: the models refuse it, so it is refused before it is stored and queued.
      name: 'an all-black PNG',
      files: () => [{ name: 'black.png', bytes: blackPng, type: 'image/png' }],
      status: 422,
      code: 'image_blank',
      mentions: '"black.png": is blank: every pixel has grey level 0, so there is nothing to analyse',
    },
    {
      name: 'an all-white JPEG',
      files: () => [{ name: 'white.jpg', bytes: whiteJpeg, type: 'image/jpeg' }],
      status: 422,
      code: 'image_blank',
      mentions: '"white.jpg": is blank: every pixel has grey level 255',
    },
    {
      name: 'a black PNG with two stray white pixels',
      files: () => [{ name: 'stray.png', bytes: strayPixelsPng, type: 'image/png' }],
      status: 422,
      code: 'image_blank',
      mentions: '"stray.png": is blank: only 0.049% of its pixels differ by more than 20 grey levels from its background\'s 0 (under 1%: too little to show a head), so there is nothing to analyse',
    },
    {
      name: 'a blank DICOM frame after a good slice',
      files: () => [goodFile, { name: 'blank.dcm', bytes: blankDicom, type: 'application/dicom' }],
      status: 422,
      code: 'image_blank',
      mentions: '"blank.dcm": is blank: every pixel has grey level 0',
    },
    {
      name: 'a file over the size limit',
      files: () => [{ name: 'huge.jpg', bytes: randomBytes(MAX_UPLOAD_BYTES + 50_000) }],
      status: 413,
      code: 'file_too_large',
      mentions: String(MAX_UPLOAD_BYTES),
    },
    {
      // Each within MAX_UPLOAD_BYTES; the third is not read to its end, let alone checked.
      name: 'files that add up to more than a request may hold',
      files: () => [1, 2, 3].map((n) => ({ name: `part-${n}.jpg`, bytes: randomBytes(MAX_UPLOAD_BYTES - 10_000) })),
      status: 413,
      code: 'request_too_large',
      mentions: `more than ${MAX_SUBMISSION_BYTES} bytes (MAX_SUBMISSION_BYTES)`,
    },
    {
      // The DICOM file's frames decode on an intake thread, so the empty file fails first; the answer still names the first bad file.
      name: 'two bad files, naming the first even when the second fails sooner',
      files: () => [
        goodFile,
        { name: 'broken.dcm', bytes: dicomFile({ width: 8, height: 8, encapsulated: Uint8Array.from({ length: 64 }, (_, i) => i), transferSyntax: TransferSyntax.jpeg2000 }) },
        { name: 'empty.jpg', bytes: new Uint8Array(0) },
      ],
      status: 422,
      code: 'image_undecodable',
      mentions: 'broken.dcm',
    },
    {
      name: 'a good image followed by a bad one',
      files: () => [goodFile, { name: 'second.jpg', bytes: truncatedJpeg() }],
      status: 422,
      code: 'image_truncated',
      mentions: 'second.jpg',
    },
  ];

  for (const testCase of cases) {
    it(`refuses ${testCase.name}`, async () => {
      const answer = await submit(testCase.files());
      expect(answer.status).toBe(testCase.status);
      expect(answer.body.code).toBe(testCase.code);
      expect(answer.body.message).toContain(testCase.mentions);
      await expectNothingStored();
    });
  }

  it('accepts an image black but for 1% of its pixels, and refuses one with a pixel fewer as nearly blank', async () => {
    const blackBut = (bright: number) =>
      sharp(Uint8Array.from({ length: 64 * 64 }, (_, i) => (i < bright ? 60 : 0)), { raw: { width: 64, height: 64, channels: 1 } })
        .png()
        .toBuffer();
    const refused = await submit([{ name: 'faint.png', bytes: await blackBut(40), type: 'image/png' }]);
    expect(refused).toMatchObject({ status: 422, body: { code: 'image_blank', message: expect.stringContaining('only 0.98% of its pixels differ') } });
    const answer = await submit([{ name: 'faint.png', bytes: await blackBut(41), type: 'image/png' }]);
    expect(answer.status).toBe(202);
    expect(await harness.env.api.ctx.queues.inference.getJobCountByTypes('waiting', 'prioritized')).toBe(1);
  });

  it('closes the connection of an upload refused before its end, so that it does not hold up a shutdown', async () => {
    const form = new FormData();
    form.append('file', new Blob([Buffer.alloc(2 * MAX_UPLOAD_BYTES, 1)]), 'large.jpg');
    // Within what a request may announce (MAX_SUBMISSION_BYTES and the framing of its parts), so that it is read up to the large file.
    form.append('file', new Blob([Buffer.alloc(6 << 20, 1)]), 'more.jpg');
    const refused = await call<ErrorBody>(harness.env, 'alice', 'POST', '/v1/studies', { body: form });
    expect([refused.status, refused.body.code]).toEqual([413, 'file_too_large']);
    const server = harness.env.api.app.server;
    const open = () => new Promise<number>((resolve) => server.getConnections((_error, count) => resolve(count)));
    await vi.waitFor(async () => expect(await open()).toBe(0), { timeout: 5_000 });
  });

  it('refuses a text field typed as JSON that does not hold JSON, as a bad field', async () => {
    const boundary = `b${randomBytes(6).toString('hex')}`;
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="priority"\r\nContent-Type: application/json\r\n\r\nstat\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="good.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
      goodFile.bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const headers = { ...harness.env.auth('alice'), 'content-type': `multipart/form-data; boundary=${boundary}` };
    const response = await fetch(`${harness.env.url}/v1/studies`, { method: 'POST', headers, body });
    expect(response.status).toBe(400);
    expect(((await response.json()) as ErrorBody).code).toBe('invalid_field');
    await expectNothingStored();
  });

  it('takes a file part sent without a filename, naming it by its place', async () => {
    const boundary = `b${randomBytes(6).toString('hex')}`;
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"\r\nContent-Type: image/jpeg\r\n\r\n`),
      goodFile.bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const headers = { ...harness.env.auth('alice'), 'content-type': `multipart/form-data; boundary=${boundary}` };
    const response = await fetch(`${harness.env.url}/v1/studies`, { method: 'POST', headers, body });
    const answer = (await response.json()) as { images: { filename: string }[] };
    expect(response.status, JSON.stringify(answer)).toBe(202);
    expect(answer.images.map((image) => image.filename)).toEqual(['image-1']);
  });

  it('keeps of a filename its last path segment, without control or format characters', async () => {
    const names = ['C:\\scans\\left.jpg', '../../etc/right.jpg', 'tab\there\u0085.jpg', 'scan\u202Egpj.exe', 'zero\u200Bwidth.jpg'];
    const answer = await call<{ images: { filename: string }[] }>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm(names.map((name) => ({ ...goodFile, name }))),
    });
    expect(answer.status).toBe(202);
    expect(answer.body.images.map((image) => image.filename)).toEqual(['left.jpg', 'right.jpg', 'tabhere.jpg', 'scangpj.exe', 'zerowidth.jpg']);
  });

  it('refuses a file sent under an unknown field name', async () => {
    const answer = await submit([goodFile], {}, 'image');
    expect([answer.status, answer.body.code]).toEqual([400, 'unknown_field']);
    expect(answer.body.message).toContain('"image"');
    await expectNothingStored();
  });

  it('refuses an unknown text field', async () => {
    const answer = await submit([goodFile], { patientName: 'x' });
    expect([answer.status, answer.body.code]).toEqual([400, 'unknown_field']);
    await expectNothingStored();
  });

  it('refuses an invalid priority and an invalid callback URL', async () => {
    const priority = await submit([goodFile], { priority: 'urgent' });
    expect([priority.status, priority.body.code]).toEqual([400, 'invalid_field']);
    expect(priority.body.message).toContain('"stat" or "routine"');
    const callback = await submit([goodFile], { callbackUrl: 'ftp://example.org/hook' });
    expect([callback.status, callback.body.code]).toEqual([400, 'invalid_field']);
    await expectNothingStored();
  });

  it('refuses a callback URL in clear to another machine, as a study, a batch or a STOW-RS query', async () => {
    const { env } = harness;
    const http = 'http://hooks.example.org/btd';
    const study = await submit([goodFile], { callbackUrl: http });
    const batch = await call<ErrorBody>(env, 'alice', 'POST', '/v1/batches', { body: { callbackUrl: 'http://10.20.0.5/hooks' } });
    const stowHeaders = { ...env.auth('alice'), 'content-type': 'multipart/related; type="application/dicom"; boundary=s' };
    const stowAnswer = await fetch(`${env.url}/v1/dicomweb/studies?callbackUrl=${encodeURIComponent(http)}`, { method: 'POST', headers: stowHeaders, body: '--s--\r\n' });
    const stow = { status: stowAnswer.status, body: (await stowAnswer.json()) as ErrorBody };
    for (const answer of [study, batch, stow]) {
      expect([answer.status, answer.body.code]).toEqual([400, 'invalid_field']);
      expect(answer.body.message).toContain('must be an https URL');
      expect(answer.body.message).toContain('WEBHOOK_REQUIRE_HTTPS');
    }
    await expectNothingStored();
    // https anywhere, and http to a receiver on this machine, whose requests cross no network.
    expect((await submit([goodFile], { callbackUrl: 'https://hooks.example.org/btd' })).status).toBe(202);
    expect((await submit([goodFile], { callbackUrl: 'http://127.0.0.1:9/btd' })).status).toBe(202);
  });

  it('refuses a submission without files, and one that is not multipart', async () => {
    const empty = await submit([], { externalId: 'ACC-1' });
    expect([empty.status, empty.body.code]).toEqual([400, 'no_files']);
    const json = await call<ErrorBody>(harness.env, 'alice', 'POST', '/v1/studies', { body: { file: 'x' } });
    expect([json.status, json.body.code]).toEqual([415, 'not_multipart']);
    await expectNothingStored();
  });
});
