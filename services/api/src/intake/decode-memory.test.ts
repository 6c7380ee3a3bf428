import { readFileSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { inflationBytes, MAX_INFLATED_DICOM_BYTES, parseDicomFile } from '@btd/model';
import { mriSlices, truncatedJpeg } from '../../../../tests/api-fixtures.js';
import { dicomFile, TransferSyntax } from '../../../../tests/helpers/dicom-file.js';
import { ApiError } from '../errors/api-error.js';
import { DecodeMemoryBudget, type DecodeRelease } from '../uploads/decode-memory-budget.js';
import { DicomReaderUnavailable, inlineDicomReader, pooledDicomReader } from './dicom-reader.js';
import { inspectUpload } from './inspect-upload.js';

const limits = { maxBytes: 20 * 1024 * 1024, maxPixels: 50_000_000, maxImages: 64 };
const jpeg = mriSlices('yes', 1)[0]!.bytes;
const dicom = readFileSync(new URL('../../../../tests/fixtures/dicom/jpeg-2000-lossless.dcm', import.meta.url));

/** Until `budget` has `count` decodes waiting (they wait on other decodes, not on time). */
async function untilWaiting(budget: DecodeMemoryBudget, count: number): Promise<void> {
  while (budget.waiting !== count) await nextTurn();
}

/**
 * Aborts the signal of an inspection, `start`ed while another decode holds `held` bytes of `budget` and
 * it waits for them: it leaves the wait with the abort's reason, and once the other decode gives them
 * back (`release`), nothing of its own is granted.
 */
async function abandonWhileWaiting(budget: DecodeMemoryBudget, held: number, release: DecodeRelease, start: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  const gone = new AbortController();
  const ended = start(gone.signal).then(() => new Error('accepted'), (error: unknown) => error);
  await untilWaiting(budget, 1);
  const reason = new ApiError(400, 'request_aborted', 'the connection closed');
  gone.abort(reason);
  expect(await ended).toBe(reason);
  expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([held, 1, 0]);
  release();
  expect([budget.heldBytes, budget.inFlight]).toEqual([0, 0]);
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
    await abandonWhileWaiting(budget, 1, other, async (signal) => inspectUpload(Buffer.from(bytes), name, limits, { ...checks, signal }));
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

describe.each([
  ['on the event loop', (budget: DecodeMemoryBudget) => inlineDicomReader(budget)],
  ['on threads', (budget: DecodeMemoryBudget) => pooledDicomReader(2, undefined, budget)],
])('the memory of a deflated DICOM file read %s', (_, makeReader) => {
  const deflated = readFileSync(new URL('../../../../tests/fixtures/dicom/deflated.dcm', import.meta.url));
  const readers: { close(): Promise<void> }[] = [];
  afterAll(async () => Promise.all(readers.map(async (reader) => reader.close())));

  it('takes the bound of its inflation before the file is inflated, waiting for it where its decode alone would fit, and gives it all back', async () => {
    const bound = inflationBytes(deflated);
    expect(bound).toBeGreaterThan(2 * MAX_INFLATED_DICOM_BYTES);
    const budget = new DecodeMemoryBudget(bound + 1024 * 1024);
    const reader = makeReader(budget);
    readers.push(reader);
    // What is left (1 MiB and a byte) holds the slice's decode, not its inflation.
    const other = await budget.acquire(bound - 1);
    expect(await decodeBytesOf(deflated, 'slice.dcm')).toBeLessThan(1024 * 1024);
    const inspection = inspectUpload(Buffer.from(deflated), 'slice.dcm', limits, { dicom: reader, decodeMemory: budget });
    const readAtOnce = inspection.then(() => Promise.reject(new Error('inflated without waiting for the memory')));
    await Promise.race([untilWaiting(budget, 1), readAtOnce]);
    other();
    await expect(inspection).resolves.toMatchObject({ filename: 'slice.dcm' });
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([0, 0, 0]);
  });

  it('leaves the wait for its inflation, uninflated and taking nothing, when its request has gone', async () => {
    const bound = inflationBytes(deflated);
    const budget = new DecodeMemoryBudget(bound + 1024 * 1024);
    const reader = makeReader(budget);
    readers.push(reader);
    const other = await budget.acquire(bound - 1);
    await abandonWhileWaiting(budget, bound - 1, other, async (signal) => inspectUpload(Buffer.from(deflated), 'slice.dcm', limits, { dicom: reader, decodeMemory: budget, signal }));
  });

  it('waits for a decode larger than its inflation with nothing held, so that two such reads never wait on each other', async () => {
    const side = 3000; // 144 MB of decode, more than the inflation's bound
    const file = dicomFile({ width: side, height: side, pixels: Uint8Array.from({ length: side * side }, (_, i) => i % 251), bitsAllocated: 8, transferSyntax: TransferSyntax.deflated });
    const needed = side * side * 16 + parseDicomFile(file).inflatedBytes;
    expect(needed).toBeGreaterThan(inflationBytes(file));
    // Room for the decode of one file (with its inflated data set), or the inflations of both, not for a decode and an inflation.
    const budget = new DecodeMemoryBudget(Math.max(needed, 2 * inflationBytes(file)));
    const reader = makeReader(budget);
    readers.push(reader);
    const bigLimits = { ...limits, maxPixels: side * side };
    const both = [inspectUpload(Buffer.from(file), 'a.dcm', bigLimits, { dicom: reader, decodeMemory: budget }), inspectUpload(Buffer.from(file), 'b.dcm', bigLimits, { dicom: reader, decodeMemory: budget })];
    await expect(Promise.all(both)).resolves.toMatchObject([{ filename: 'a.dcm' }, { filename: 'b.dcm' }]);
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([0, 0, 0]);
  }, 60_000);
});
