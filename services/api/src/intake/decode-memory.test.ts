import { readFileSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { mriSlices, truncatedJpeg } from '../../../../tests/api-fixtures.js';
import { ApiError } from '../errors/api-error.js';
import { DecodeMemoryBudget } from '../uploads/decode-memory-budget.js';
import { DicomReaderUnavailable, inlineDicomReader, pooledDicomReader } from './dicom-reader.js';
import { inspectUpload } from './inspect-upload.js';

const limits = { maxBytes: 20 * 1024 * 1024, maxPixels: 50_000_000, maxImages: 64 };
const jpeg = mriSlices('yes', 1)[0]!.bytes;
const dicom = readFileSync(new URL('../../../../tests/fixtures/dicom/jpeg-2000-lossless.dcm', import.meta.url));

/** Until `budget` has `count` decodes waiting (they wait on other decodes, not on time). */
async function untilWaiting(budget: DecodeMemoryBudget, count: number): Promise<void> {
  while (budget.waiting !== count) await nextTurn();
}

/** The bytes an image's decode takes, as its own inspection, unbounded, tells. */
async function decodeBytesOf(bytes: Uint8Array, name: string): Promise<number> {
  const accepted = await inspectUpload(Buffer.from(bytes), name, limits);
  return accepted.header.decodeBytes;
}

async function refusalOf(inspection: Promise<unknown>): Promise<ApiError> {
  const error = await inspection.then(() => new Error('accepted'), (caught: unknown) => caught);
  if (!(error instanceof ApiError)) throw error;
  return error;
}

describe.each([
  ['a JPEG, decoded by libvips', 'slice.jpg', jpeg, () => inlineDicomReader()],
  ['a DICOM file, decoded on the event loop', 'slice.dcm', dicom, (budget: DecodeMemoryBudget) => inlineDicomReader(budget)],
  ['a DICOM file, decoded on a thread', 'slice.dcm', dicom, (budget: DecodeMemoryBudget) => pooledDicomReader(1, undefined, budget)],
])('the memory that decodes share, for %s', (_, name, bytes, makeReader) => {
  const readers: { close(): Promise<void> }[] = [];
  afterAll(async () => Promise.all(readers.map(async (reader) => reader.close())));

  /** Intake checks whose decodes share a budget of `limit` bytes. */
  function checksWith(limit: number) {
    const budget = new DecodeMemoryBudget(limit);
    const dicomReader = makeReader(budget);
    readers.push(dicomReader);
    return { budget, checks: { dicom: dicomReader, decodeMemory: budget } };
  }

  it('waits, before decoding, until the decodes that hold the memory have ended, then decodes', async () => {
    const needed = await decodeBytesOf(bytes, name);
    const { budget, checks } = checksWith(needed);
    const other = await budget.acquire(1); // a decode in flight: what is left is one byte short
    const inspection = inspectUpload(Buffer.from(bytes), name, limits, checks);
    const decodedAtOnce = inspection.then(() => Promise.reject(new Error('decoded without waiting for the memory')));
    await Promise.race([untilWaiting(budget, 1), decodedAtOnce]);
    expect(budget.inFlight).toBe(1);
    other();
    await expect(inspection).resolves.toMatchObject({ filename: name, header: { decodeBytes: needed } });
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([0, 0, 0]);
  });

  it('leaves the wait, undecoded and taking nothing, when its request has gone, with the reason it went', async () => {
    const needed = await decodeBytesOf(bytes, name);
    const { budget, checks } = checksWith(needed);
    const other = await budget.acquire(1);
    const gone = new AbortController();
    const inspection = inspectUpload(Buffer.from(bytes), name, limits, { ...checks, signal: gone.signal });
    const ended = inspection.then(() => new Error('accepted'), (error: unknown) => error);
    await untilWaiting(budget, 1);
    const reason = new ApiError(400, 'request_aborted', 'the connection closed');
    gone.abort(reason);
    expect(await ended).toBe(reason);
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([1, 1, 0]);
    other();
    expect([budget.heldBytes, budget.inFlight]).toEqual([0, 0]); // nothing of its own was granted on the release
  });

  it('refuses at once, naming the setting, an image whose decode alone needs more than the budget', async () => {
    const needed = await decodeBytesOf(bytes, name);
    const { budget, checks } = checksWith(needed - 1);
    const refused = await refusalOf(inspectUpload(Buffer.from(bytes), name, limits, checks));
    expect([refused.statusCode, refused.code]).toEqual([422, 'image_too_large']);
    expect(refused.message).toContain(`decodes may hold ${needed - 1} bytes at once (MAX_INFLIGHT_DECODE_BYTES)`);
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([0, 0, 0]);
  });

  it('gives the memory back after a file that does not decode, and the next one goes through', async () => {
    const needed = await decodeBytesOf(bytes, name);
    const { budget, checks } = checksWith(needed);
    const cut = name.endsWith('.jpg') ? truncatedJpeg() : dicom.subarray(0, dicom.length - 400);
    const refused = await refusalOf(inspectUpload(Buffer.from(cut), name, limits, checks));
    expect(refused.code).toMatch(/^image_(truncated|undecodable)$/);
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([0, 0, 0]);
    await expect(inspectUpload(Buffer.from(bytes), name, limits, checks)).resolves.toMatchObject({ filename: name });
  });
});

describe('the memory of a DICOM read on a thread, when the threads end under it (the API shutting down)', () => {
  it('is given back by a read that was still waiting for it, once it is granted, and never held for good', async () => {
    const needed = await decodeBytesOf(dicom, 'slice.dcm');
    const budget = new DecodeMemoryBudget(needed);
    const reader = pooledDicomReader(1, undefined, budget);
    const other = await budget.acquire(1); // a decode in flight: the read must wait for it
    const inspection = inspectUpload(Buffer.from(dicom), 'slice.dcm', limits, { dicom: reader, decodeMemory: budget });
    const ended = inspection.then(() => new Error('accepted'), (error: unknown) => error);
    await untilWaiting(budget, 1);
    await reader.close();
    expect(await ended).toBeInstanceOf(DicomReaderUnavailable);
    // The grant comes after its read has ended: it goes straight back.
    other();
    await nextTurn();
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([0, 0, 0]);
    await expect(budget.run(needed, async () => 'decoded')).resolves.toBe('decoded');
  });
});
