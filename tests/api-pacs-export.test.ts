import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseMultipart } from '@remix-run/multipart-parser';
import type { StudyView, SubmittedStudy } from '@btd/api';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm, waitForStudy } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from './api-webhook-receiver.js';
import { dicomFile } from './helpers/dicom-file.js';
import { waitFor } from './helpers/index.js';

// The PACS answers the first export with 503, then stores; it takes longer to answer than a webhook
// receiver may (WEBHOOK_TIMEOUT_MS), as a PACS storing a study's captures can.
let pacs: WebhookReceiver;
const overrides: Record<string, string> = { PACS_STOW_AUTHORIZATION: 'Basic YnRkOnNlY3JldA==', WEBHOOK_TIMEOUT_MS: '300' };
beforeAll(async () => {
  pacs = await startWebhookReceiver([503], 800);
  overrides.PACS_STOW_URL = `${pacs.url}/dicom-web/`;
});
afterAll(async () => {
  await pacs.close();
});
const harness = useApiHarness(overrides);

describe('export of heatmap captures to a PACS (PACS_STOW_URL)', () => {
  it("stores a finished study's captures of its DICOM images in the PACS by STOW-RS, retrying until the PACS takes them", async () => {
    await harness.startWorker();
    const [slice] = mriSlices('yes', 1);
    const grey = await sharp(slice!.bytes).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    const identifiers = { studyInstanceUid: '1.2.826.0.1.55', seriesInstanceUid: '1.2.826.0.1.55.1', sopInstanceUid: '1.2.826.0.1.55.1.1' };
    const dicom = dicomFile({ width: grey.info.width, height: grey.info.height, pixels: grey.data, bitsAllocated: 8, identifiers, patient: { name: 'Doe^Jane', id: 'P-55' } });
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', {
      body: studyForm([
        { name: 'slice.dcm', bytes: dicom, type: 'application/dicom' },
        { name: slice!.name, bytes: slice!.bytes },
        { name: 'series.dcm', bytes: readFileSync(new URL('./fixtures/dicom/rle-3-frames.dcm', import.meta.url)), type: 'application/dicom' },
      ]),
    });
    expect(submitted.status).toBe(202);
    await waitForStudy(harness.env, 'alice', submitted.body.studyId);

    const [, stored] = await pacs.waitFor(2, '/dicom-web/studies', 60_000);
    expect(stored!.headers.authorization).toBe('Basic YnRkOnNlY3JldA==');
    const contentType = String(stored!.headers['content-type']);
    expect(contentType).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    // The DICOM images' captures, one per frame of the multi-frame file; none for the JPEG, which has no patient or study to file under.
    const parts = [...parseMultipart(new Uint8Array(stored!.raw), { boundary: contentType.split('boundary=')[1]!, maxFileSize: 50_000_000 })];
    expect(parts.map((part) => part.mediaType)).toEqual(Array(4).fill('application/dicom'));
    const frames = parts.slice(1).map((part) => dicomParser.parseDicom(part.bytes).elements.x00082112?.items?.[0]?.dataSet?.intString('x00081160'));
    expect(frames).toEqual([1, 2, 3]);
    const capture = dicomParser.parseDicom(parts[0]!.bytes);
    const text = (tag: string) => capture.string(tag)?.replace(/\0+$/, '');
    expect([text('x00080016'), text('x0020000d'), text('x00100010'), text('x00100020')]).toEqual(['1.2.840.10008.5.1.4.1.1.7', identifiers.studyInstanceUid, 'Doe^Jane', 'P-55']);

    // The PACS answers after its reply delay, longer than WEBHOOK_TIMEOUT_MS, and the export waits for it.
    const view = await waitFor(async () => {
      const polled = await call<StudyView>(harness.env, 'alice', 'GET', `/v1/studies/${submitted.body.studyId}`);
      return polled.body.pacsExport?.lastStatus === 200 && polled.body;
    }, { timeoutMs: 10_000, what: 'the export to be delivered' });
    expect(view.pacsExport).toMatchObject({ attempts: 2, lastStatus: 200, deliveredAt: expect.any(String) });
    expect(view.webhook).toBeUndefined();
  });

  it('exports nothing for a study without a DICOM image', async () => {
    await harness.startWorker();
    const [slice] = mriSlices('no', 1);
    const before = pacs.received.length;
    const submitted = await call<SubmittedStudy>(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: slice!.name, bytes: slice!.bytes }]) });
    await waitForStudy(harness.env, 'alice', submitted.body.studyId);
    // The export would be queued just after the study finished, and sent at once.
    await sleep(1500);
    const study = await call<StudyView>(harness.env, 'alice', 'GET', `/v1/studies/${submitted.body.studyId}`);
    expect(study.body.pacsExport).toBeUndefined();
    expect(pacs.received.length).toBe(before);
  });
});
