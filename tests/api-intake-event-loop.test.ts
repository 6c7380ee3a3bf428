import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { call, studyForm } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { dicomFile, TransferSyntax } from './helpers/dicom-file.js';

const harness = useApiHarness();

const STUDY = '1.2.826.0.1.3680043.2.1143.7.1';
const FILES = 16;

/**
 * Deflated slices of one series, each with a private element of zeros that inflates to 4 MB: a few
 * kilobytes on the wire, and milliseconds each to parse, which the event loop must not spend.
 */
function deflatedSeries(): Buffer[] {
  const pixels = Uint16Array.from({ length: 512 * 512 }, (_, i) => (i * 7919) % 4096);
  return Array.from({ length: FILES }, (_, i) =>
    dicomFile({
      width: 512,
      height: 512,
      pixels,
      bitsStored: 12,
      transferSyntax: TransferSyntax.deflated,
      privateBytes: 4_000_000,
      identifiers: { studyInstanceUid: STUDY, seriesInstanceUid: `${STUDY}.1`, sopInstanceUid: `${STUDY}.1.${i + 1}` },
    }),
  );
}

function multipartRelated(files: readonly Buffer[]): { body: Buffer; contentType: string } {
  const boundary = `stow-${randomBytes(8).toString('hex')}`;
  const chunks = files.flatMap((bytes) => [Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), bytes, Buffer.from('\r\n')]);
  return { body: Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

describe('DICOM uploads are read off the event loop, once each', () => {
  const files = deflatedSeries();

  it('reads each file of a study of deflated DICOM files once, on an intake thread, none on the event loop', async () => {
    const reads = harness.env.api.ctx.intakeChecks.dicom.reads;
    const before = { ...reads };
    const form = () => studyForm(files.map((bytes, i) => ({ name: `slice-${i + 1}.dcm`, bytes })));
    const answer = await call<{ images: unknown[] }>(harness.env, 'alice', 'POST', '/v1/studies', { body: form() });
    expect(answer.status).toBe(202);
    expect(answer.body.images).toHaveLength(FILES);
    expect({ onThreads: reads.onThreads - before.onThreads, onEventLoop: reads.onEventLoop - before.onEventLoop }).toEqual({ onThreads: FILES, onEventLoop: 0 });
  });

  it('reads each instance of a STOW-RS request once, on an intake thread, none on the event loop (not once for its answer and again for its checks)', async () => {
    const reads = harness.env.api.ctx.intakeChecks.dicom.reads;
    const before = { ...reads };
    const { body, contentType } = multipartRelated(files);
    const answer = await fetch(`${harness.env.url}/v1/dicomweb/studies`, { method: 'POST', headers: { ...harness.env.auth('alice'), 'content-type': contentType }, body }).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as Record<string, { Value?: unknown[] }>,
    }));
    expect(answer.status).toBe(200);
    expect(answer.body['00081199']?.Value).toHaveLength(FILES);
    expect({ onThreads: reads.onThreads - before.onThreads, onEventLoop: reads.onEventLoop - before.onEventLoop }).toEqual({ onThreads: FILES, onEventLoop: 0 });
  });
});
