import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors/api-error.js';
import { UploadMemoryBudget } from '../uploads/upload-memory-budget.js';
import { readStowParts } from './stow-body.js';

const BOUNDARY = 'b0undary';
const LIMITS = { maxBytes: 1000, maxParts: 10, maxTotalBytes: 2500 };
const part = (text: string) => `--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n${text}`;

async function read(chunks: (string | Error)[]): Promise<string[]> {
  const body = Readable.from(
    (async function* () {
      for (const chunk of chunks) {
        if (chunk instanceof Error) throw chunk;
        yield Buffer.from(chunk);
      }
    })(),
  );
  const parts = await readStowParts(body, BOUNDARY, LIMITS, new UploadMemoryBudget(1_000_000).reserve(0));
  return parts.map((p) => Buffer.from(p.bytes).toString());
}

const refusal = (chunks: (string | Error)[]) =>
  read(chunks).then(
    () => undefined,
    (error: unknown) => (error instanceof ApiError ? { status: error.statusCode, code: error.code } : error),
  );

describe('reading a STOW-RS body', () => {
  it('reads every part in order', async () => {
    expect(await read([`${part('AAA')}\r\n${part('BBB')}\r\n--${BOUNDARY}--\r\n`])).toEqual(['AAA', 'BBB']);
  });

  it('skips a preamble before the first delimiter, as dicomweb-client sends it (one CRLF), or a line of text', async () => {
    expect(await read([`\r\n${part('AAA')}\r\n${part('BBB')}\r\n--${BOUNDARY}--`])).toEqual(['AAA', 'BBB']);
    expect(await read([`This is a DICOM study.\r\n${part('AAA')}\r\n--${BOUNDARY}--\r\n`])).toEqual(['AAA']);
  });

  it('finds the first delimiter when it is split across chunks', async () => {
    expect(await read(['\r', `\n--${BOUNDARY.slice(0, 3)}`, `${BOUNDARY.slice(3)}\r\nContent-Type: application/dicom\r\n\r\nAAA\r\n--${BOUNDARY}--`])).toEqual(['AAA']);
  });

  it('drops what follows the close delimiter in later chunks: a last CRLF sent on its own, or an epilogue', async () => {
    expect(await read([`${part('AAA')}\r\n--${BOUNDARY}--`, '\r\n'])).toEqual(['AAA']);
    expect(await read([`${part('AAA')}\r\n--${BOUNDARY}--\r\n`, 'an epilogue', ' in two chunks'])).toEqual(['AAA']);
  });

  it('refuses a body that ends before its close delimiter, or has no delimiter at all', async () => {
    expect(await refusal([`${part('AAA')}\r\n--${BOUNDARY}`])).toEqual({ status: 400, code: 'malformed_multipart' });
    expect(await refusal(['not a multipart body'])).toEqual({ status: 400, code: 'malformed_multipart' });
    expect(await refusal(['x'.repeat(9000), part('AAA')])).toEqual({ status: 400, code: 'malformed_multipart' });
    expect(await refusal([])).toEqual({ status: 400, code: 'malformed_multipart' });
  });

  it('refuses instances that add up to more than the request may hold, each within its own limit', async () => {
    const instances = ['A', 'B', 'C'].map((letter) => `${part(letter.repeat(900))}\r\n`).join('');
    expect(await refusal([instances, `--${BOUNDARY}--\r\n`])).toEqual({ status: 413, code: 'request_too_large' });
    expect(await read([instances.slice(0, instances.lastIndexOf(`--${BOUNDARY}`)), `--${BOUNDARY}--\r\n`])).toEqual(['A'.repeat(900), 'B'.repeat(900)]);
  });

  it('reports a client that closed the connection mid-body as such, not as a lost dependency', async () => {
    const aborted = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    expect(await refusal([part('AAA'), aborted])).toEqual({ status: 400, code: 'request_aborted' });
  });
});
