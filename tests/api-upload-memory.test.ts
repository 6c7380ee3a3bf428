import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { mriSlices, pngDeclaring, truncatedJpeg } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import { dicomFile, TransferSyntax } from './helpers/dicom-file.js';

const MAX_SUBMISSION_BYTES = 450_000;
const MAX_INFLIGHT_UPLOAD_BYTES = 1_000_000;
const TIMEOUT_MS = 8000;
/** Room for a Br35H slice's decode (about 1 MB), not for a 3000×3000 image's (18 MB). */
const MAX_INFLIGHT_DECODE_BYTES = 8_000_000;

const harness = useApiHarness({
  MAX_UPLOAD_BYTES: '200000',
  MAX_SUBMISSION_BYTES: String(MAX_SUBMISSION_BYTES),
  MAX_INFLIGHT_UPLOAD_BYTES: String(MAX_INFLIGHT_UPLOAD_BYTES),
  HTTP_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS),
  MAX_INFLIGHT_DECODE_BYTES: String(MAX_INFLIGHT_DECODE_BYTES),
});

/** An upload sent in part on a connection of its own, left waiting for the rest; `answer` is the server's first answer line. */
interface HeldUpload {
  readonly socket: Socket;
  readonly answer: Promise<string>;
}

const FILE_PART = (name: string) => `--b\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: image/jpeg\r\n\r\n`;

/** Sends the headers of a `POST /v1/studies` and the first `body` bytes, with `Content-Length: length` or (without one) chunked. */
function holdUpload(body: string | Buffer, length?: number): HeldUpload {
  const { hostname, port } = new URL(harness.env.url);
  const framing = length === undefined ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`;
  const head = `POST /v1/studies HTTP/1.1\r\nHost: btd\r\nAuthorization: Bearer ${harness.env.keys.alice}\r\nContent-Type: multipart/form-data; boundary=b\r\n${framing}\r\n\r\n`;
  const bytes = Buffer.from(body);
  const payload = length === undefined ? Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]) : bytes;
  const socket = connect(Number(port), hostname, () => socket.write(Buffer.concat([Buffer.from(head), payload])));
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve(text.split('\r\n')[0] ?? ''));
  });
  return { socket, answer };
}

/** A metric of the API without labels. */
async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${harness.env.url}/metrics`)).text();
  const line = text.split('\n').find((row) => row.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

/**
 * Waits for a metric to read `expected`, then checks that it does; the bound (60 s) only keeps a
 * wrong value from hanging the test: a busy machine has taken over 5 s to parse a held upload.
 */
async function waitForMetric(name: string, expected: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await metric(name)) !== expected && Date.now() < deadline) await sleep(50);
  expect(await metric(name)).toBe(expected);
}

/** Waits for the bytes of uploads the API says it holds in memory (`btd_upload_bytes_in_memory`) to be `expected`. */
async function waitForHeld(expected: number): Promise<void> {
  await waitForMetric('btd_upload_bytes_in_memory', expected);
}

function stowUpload(bytes: Buffer) {
  const body = Buffer.concat([Buffer.from('--s\r\nContent-Type: application/dicom\r\n\r\n'), bytes, Buffer.from('\r\n--s--\r\n')]);
  const headers = { ...harness.env.auth('alice'), 'content-type': 'multipart/related; type="application/dicom"; boundary=s' };
  return fetch(`${harness.env.url}/v1/dicomweb/studies`, { method: 'POST', headers, body });
}

describe('the memory that parallel uploads share (MAX_INFLIGHT_UPLOAD_BYTES)', () => {
  it('answers 503 with Retry-After to uploads that would go past it, takes the others, and is all given back', async () => {
    const { env } = harness;
    // Two uploads announce 450 kB each and send a little: 900 kB of the 1 MB are held for them.
    const held = [holdUpload(FILE_PART('a.jpg'), MAX_SUBMISSION_BYTES), holdUpload(FILE_PART('b.jpg'), MAX_SUBMISSION_BYTES)];
    await waitForHeld(2 * MAX_SUBMISSION_BYTES);

    const [slice] = mriSlices('yes', 1);
    const small = await call(env, 'alice', 'POST', '/v1/studies', { body: studyForm([slice!]) });
    expect(small.status).toBe(202);

    const large = [{ name: 'large.jpg', bytes: randomBytes(150_000) }];
    const batch = await call<{ batchId: string }>(env, 'alice', 'POST', '/v1/batches', { body: {} });
    const refused = [
      await call(env, 'alice', 'POST', '/v1/studies', { body: studyForm(large) }),
      await call(env, 'alice', 'POST', `/v1/batches/${batch.body.batchId}/studies`, { body: studyForm(large) }),
    ];
    const stow = await stowUpload(randomBytes(150_000));
    refused.push({ status: stow.status, headers: stow.headers, body: (await stow.json()) as Record<string, unknown> });
    for (const answer of refused) {
      expect(answer.status).toBe(503);
      expect(answer.body.code).toBe('upload_capacity_exceeded');
      expect(answer.headers.get('retry-after')).toBe('10');
    }

    // Without a Content-Length the bytes count as they arrive: the second file of 60 kB goes past.
    const chunked = holdUpload(Buffer.concat([Buffer.from(FILE_PART('c.jpg')), randomBytes(60_000), Buffer.from(`\r\n${FILE_PART('d.jpg')}`), randomBytes(60_000)]));
    expect(await chunked.answer).toBe('HTTP/1.1 503 Service Unavailable');

    // One client goes away mid-body; the other is closed by the request deadline.
    held[0]!.socket.destroy();
    await waitForHeld(MAX_SUBMISSION_BYTES);
    expect(await held[1]!.answer).toBe('HTTP/1.1 408 Request Timeout');
    await waitForHeld(0);

    const again = await call(env, 'alice', 'POST', '/v1/studies', { body: studyForm(large) });
    expect(again.status).toBe(415); // read and checked: the memory is there again
    await waitForHeld(0);
  }, 30_000);
});

describe('the memory that decodes of uploads share (MAX_INFLIGHT_DECODE_BYTES)', () => {
  it('refuses an image whose decode alone needs more, naming the setting, and gives back what a file that fails to decode held', async () => {
    const { env } = harness;
    const wide = await call(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'wide.png', bytes: pngDeclaring(3000, 3000), type: 'image/png' }]) });
    expect(wide.status).toBe(422);
    expect(wide.body.code).toBe('image_too_large');
    expect(wide.body.message).toContain(`decodes may hold ${MAX_INFLIGHT_DECODE_BYTES} bytes at once (MAX_INFLIGHT_DECODE_BYTES)`);

    const cut = await call(env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'cut.jpg', bytes: truncatedJpeg() }]) });
    expect([cut.status, cut.body.code]).toEqual([422, 'image_truncated']);
    expect([await metric('btd_decode_bytes_in_memory'), await metric('btd_decodes_in_flight'), await metric('btd_decodes_waiting')]).toEqual([0, 0, 0]);

    const [slice] = mriSlices('yes', 1);
    const accepted = await call(env, 'alice', 'POST', '/v1/studies', { body: studyForm([slice!]) });
    expect(accepted.status).toBe(202);
    expect(await metric('btd_decode_bytes_in_memory')).toBe(0);
  });

  /** Until the API's decodes waiting for memory are `count` (they wait on other decodes, not on time). */
  async function untilWaiting(count: number): Promise<void> {
    while (harness.env.api.ctx.intakeChecks.decodeMemory!.waiting !== count) await sleep(20);
  }

  it('makes a deflated DICOM upload wait for the memory of its inflation, where its decode alone would fit, and lets it leave that wait when its client goes', async () => {
    const budget = harness.env.api.ctx.intakeChecks.decodeMemory!;
    // A 128×128 slice decodes in 256 kB: what is left beside another decode of 7 MB holds it, not the inflation's bound (the whole budget here).
    const side = 128;
    const deflated = Buffer.from(dicomFile({ width: side, height: side, pixels: Uint16Array.from({ length: side * side }, (_, i) => i % 4096), bitsStored: 12, transferSyntax: TransferSyntax.deflated }));
    const other = await budget.acquire(MAX_INFLIGHT_DECODE_BYTES - 1_000_000);
    const waited = await metric('btd_decode_waits_total');
    const accepted = call(harness.env, 'alice', 'POST', '/v1/studies', { body: studyForm([{ name: 'slice.dcm', bytes: deflated, type: 'application/dicom' }]) });
    const answeredAtOnce = accepted.then(() => Promise.reject(new Error('answered without waiting for the memory')));
    await Promise.race([untilWaiting(1), answeredAtOnce]).finally(other);
    expect(await metric('btd_decode_waits_total')).toBe(waited + 1);
    expect((await accepted).status).toBe(202);
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([0, 0, 0]);

    const full = await budget.acquire(MAX_INFLIGHT_DECODE_BYTES - 1_000_000);
    const parts = [Buffer.from(FILE_PART('slice.dcm')), deflated, Buffer.from('\r\n--b--\r\n')];
    const body = Buffer.concat(parts);
    const upload = holdUpload(body, body.length);
    await untilWaiting(1);
    upload.socket.destroy();
    await untilWaiting(0);
    expect(await metric('btd_decode_waits_abandoned_total')).toBe(1);
    full();
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([0, 0, 0]);
    await waitForHeld(0);
  });

  it('lets the decodes of an upload whose client has gone leave the wait, never run, taking nothing', async () => {
    const budget = harness.env.api.ctx.intakeChecks.decodeMemory!;
    const full = await budget.acquire(MAX_INFLIGHT_DECODE_BYTES);
    // A JPEG decoded on the event loop and a DICOM file whose frame decodes on an intake thread, both sent whole.
    const [slice] = mriSlices('yes', 1);
    const side = 128;
    const dicom = dicomFile({ width: side, height: side, pixels: Uint16Array.from({ length: side * side }, (_, i) => i % 4096), bitsStored: 12 });
    const parts = [Buffer.from(FILE_PART('a.jpg')), slice!.bytes, Buffer.from(`\r\n${FILE_PART('b.dcm')}`), Buffer.from(dicom), Buffer.from('\r\n--b--\r\n')];
    const body = Buffer.concat(parts);
    const upload = holdUpload(body, body.length);
    await waitForMetric('btd_decodes_waiting', 2);

    upload.socket.destroy();
    await waitForMetric('btd_decodes_waiting', 0);
    expect(await metric('btd_decode_waits_abandoned_total')).toBe(2);
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([MAX_INFLIGHT_DECODE_BYTES, 1, 0]);
    // Given back, the memory goes to no decode of theirs: the budget grants the next in line as it is released.
    full();
    expect([budget.heldBytes, budget.inFlight]).toEqual([0, 0]);
    await waitForHeld(0);
  });
});
