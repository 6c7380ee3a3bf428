import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { BatchView, ErrorBody, SubmittedStudy } from '@btd/api';
import { mriSlices } from './api-fixtures.js';
import { call, studyForm } from './api-client.js';
import { useApiHarness } from './api-harness.js';
import type { TestClient } from './api-test-env.js';

// A request the API waits on for the rest of its body is answered 408 after this, and its test fails.
const harness = useApiHarness({ HTTP_REQUEST_TIMEOUT_MS: '5000' });

/** What an upload's announced body is: 40 MB, of which the tests send only the start. */
const ANNOUNCED = 40_000_000;

const field = (name: string, value: string) => `--b\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const filePart = (name: string) => `--b\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: image/jpeg\r\n\r\n`;
const END = '\r\n--b--\r\n';

/** The API's answer to a request: status, headers (lower-case names) and JSON body. */
interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ErrorBody;
}

/** An upload on a connection of its own, whose body the test sends piece by piece; `answer` resolves when the API closes it. */
interface HeldUpload {
  readonly socket: Socket;
  readonly answer: Promise<RawAnswer>;
}

function parseAnswer(text: string): RawAnswer {
  const [head = '', body = ''] = text.split('\r\n\r\n', 2);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  const json = body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]), headers, body: (json ? JSON.parse(json) : {}) as ErrorBody };
}

/**
 * Sends a multipart upload's headers, announcing `announced` bytes of body, and `start` of that body;
 * the rest is the test's to send. No timer: a request that the API leaves waiting ends in its 408.
 */
function holdUpload(path: string, start: string | Buffer, announced: number, client: TestClient = 'alice', headers: Record<string, string> = {}): HeldUpload {
  const { hostname, port } = new URL(harness.env.url);
  const head = [
    `POST ${path} HTTP/1.1`,
    'Host: btd',
    `Authorization: ${harness.env.auth(client).authorization}`,
    'Content-Type: multipart/form-data; boundary=b',
    `Content-Length: ${announced}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  const socket = connect(Number(port), hostname, () => socket.write(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), Buffer.from(start)])));
  const answer = new Promise<RawAnswer>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // Writing on after the API closed the connection fails; what it answered is what counts.
    socket.on('error', () => {});
    socket.on('close', () => resolve(parseAnswer(Buffer.concat(chunks).toString('latin1'))));
  });
  return { socket, answer };
}

async function newBatch(client: TestClient = 'alice'): Promise<string> {
  return (await call<BatchView>(harness.env, client, 'POST', '/v1/batches', { body: {} })).body.batchId;
}

/** A batch that took one study (by `externalId` ACC-1) and was then closed; the study's bytes. */
async function closedBatch(): Promise<{ batchId: string; bytes: Buffer }> {
  const batchId = await newBatch();
  const [slice] = mriSlices('yes', 1);
  const taken = await call(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, { body: studyForm([slice!], { externalId: 'ACC-1' }) });
  expect(taken.status).toBe(202);
  expect((await call<BatchView>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/close`)).body.state).toBe('closed');
  return { batchId, bytes: slice!.bytes };
}

describe('a chunk for a batch that takes no more studies', () => {
  it('whose externalId, sent before its files, names no study is refused 409 batch_not_open before any file is read, on a connection then closed', async () => {
    const { batchId } = await closedBatch();
    const stored = await harness.env.objectKeys();
    const cases: [string, string, Record<string, string>][] = [
      ['an externalId the client never used', field('externalId', 'ACC-2'), {}],
      ['with an Idempotency-Key the client never used', field('priority', 'stat') + field('externalId', 'ACC-3'), { 'Idempotency-Key': 'chunk-2' }],
    ];
    for (const [what, fields, headers] of cases) {
      // Of the 40 MB announced, the fields and the first 64 kB of a file are sent, then nothing.
      const start = Buffer.concat([Buffer.from(fields + filePart('slice.jpg')), randomBytes(65_536)]);
      const { answer } = holdUpload(`/v1/batches/${batchId}/studies`, start, ANNOUNCED, 'alice', headers);
      const { status, headers: answered, body } = await answer;
      expect([what, status, body.code, answered.connection]).toEqual([what, 409, 'batch_not_open', 'close']);
      expect(body.message).toBe('the batch is closed and takes no more studies');
    }
    expect(await harness.env.objectKeys()).toEqual(stored);
    expect(harness.env.api.ctx.uploadMemory.heldBytes).toBe(0);
  });

  it('with no externalId before its files is refused 409 batch_not_open once the form is read, without its files inspected', async () => {
    const { batchId } = await closedBatch();
    for (const fields of [{}, { priority: 'stat' }]) {
      // Not an image: inspected, it would be refused 415 unsupported_type.
      const form = new FormData();
      form.append('file', new Blob([randomBytes(50_000)], { type: 'image/jpeg' }), 'noise.jpg');
      for (const [name, value] of Object.entries(fields)) form.append(name, value);
      const refused = await call<ErrorBody>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, { body: form });
      expect([fields, refused.status, refused.body.code]).toEqual([fields, 409, 'batch_not_open']);
    }
  });

  it('that retries a study the batch took, its externalId after its file, still gets that study back', async () => {
    const { batchId, bytes } = await closedBatch();
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), 'slice.jpg');
    form.append('externalId', 'ACC-1');
    const retried = await call<SubmittedStudy>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/studies`, { body: form });
    expect([retried.status, retried.headers.get('idempotent-replayed'), retried.body.batchId]).toEqual([202, 'true', batchId]);
  });

  it('for a batch unknown or another client\'s is refused 404 before any of its files', async () => {
    const bobs = await newBatch('bob');
    for (const batchId of ['bat_0000000000000000000', bobs]) {
      const start = Buffer.concat([Buffer.from(filePart('slice.jpg')), randomBytes(65_536)]);
      const { status, headers, body } = await holdUpload(`/v1/batches/${batchId}/studies`, start, ANNOUNCED).answer;
      expect([batchId, status, body.code, headers.connection]).toEqual([batchId, 404, 'not_found', 'close']);
    }
  });

  it('for a batch closed while the chunk was being sent is refused 409 batch_not_open, and nothing of it is kept', async () => {
    const batchId = await newBatch();
    const [slice] = mriSlices('no', 1);
    const body = Buffer.concat([Buffer.from(filePart('slice.jpg')), slice!.bytes, Buffer.from(END)]);
    const half = Math.floor(body.length / 2);
    // Whole, the request is answered as any other: the client asks for its connection to be closed then.
    const upload = holdUpload(`/v1/batches/${batchId}/studies`, body.subarray(0, half), body.length, 'alice', { Connection: 'close' });
    // The API has the request (the batch was open) and holds its bytes; the batch closes; the rest follows.
    const { ctx } = harness.env.api;
    while (ctx.uploadMemory.heldBytes === 0) await sleep(20);
    expect((await call<BatchView>(harness.env, 'alice', 'POST', `/v1/batches/${batchId}/close`)).body.state).toBe('done');
    upload.socket.write(body.subarray(half));
    const refused = await upload.answer;
    expect([refused.status, refused.body.code]).toEqual([409, 'batch_not_open']);
    expect(refused.body.message).toBe('the batch is done and takes no more studies');
    expect(await harness.env.objectKeys()).toEqual([]);
    const studies = await call<{ total: number }>(harness.env, 'alice', 'GET', '/v1/studies');
    expect([studies.body.total, (await call<BatchView>(harness.env, 'alice', 'GET', `/v1/batches/${batchId}`)).body.counts.total]).toEqual([0, 0]);
    expect(ctx.uploadMemory.heldBytes).toBe(0);
  });
});
