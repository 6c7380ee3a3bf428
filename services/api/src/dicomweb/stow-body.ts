import type { Readable } from 'node:stream';
import {
  MaxFileSizeExceededError,
  MaxPartsExceededError,
  MaxTotalSizeExceededError,
  MultipartParseError,
  MultipartParser,
  getMultipartBoundary,
} from '@remix-run/multipart-parser';
import { ApiError } from '../errors/api-error.js';
import { isClientAbort } from '../errors/client-abort.js';
import { submissionTooLarge } from '../intake/read-study-form.js';
import type { UploadReservation } from '../uploads/upload-memory-budget.js';

/** One part of a STOW-RS request: a DICOM instance, or what the sender put in its place. */
export interface StowPart {
  /** 1-based, in the order sent. */
  readonly index: number;
  readonly contentType: string | undefined;
  readonly bytes: Uint8Array;
}

/** Limits of one STOW-RS request. */
export interface StowBodyLimits {
  /** Largest instance, in bytes. */
  readonly maxBytes: number;
  /** Most instances. */
  readonly maxParts: number;
  /** Most bytes of all the instances together. */
  readonly maxTotalBytes: number;
}

const EXPECTED_TYPE = 'multipart/related; type="application/dicom"; boundary=…';

/**
 * The boundary of a STOW-RS body, after checking that its Content-Type is `multipart/related`
 * with `type="application/dicom"` (DICOM PS3.18 10.5: the instances themselves, not their metadata).
 *
 * @throws ApiError 415 for another media type, 400 without a boundary
 */
export function stowBoundary(contentType: string | undefined): string {
  const [mediaType = '', ...parameters] = (contentType ?? '').split(';').map((piece) => piece.trim());
  const type = parameters.find((parameter) => /^type=/i.test(parameter))?.replace(/^type=/i, '').replace(/^"|"$/g, '');
  if (mediaType.toLowerCase() !== 'multipart/related' || (type !== undefined && type.toLowerCase() !== 'application/dicom')) {
    const sent = contentType ? `Content-Type ${JSON.stringify(contentType)}` : 'no Content-Type';
    throw new ApiError(415, 'unsupported_media_type', `${sent}; send DICOM instances as ${EXPECTED_TYPE}`);
  }
  const boundary = getMultipartBoundary(contentType ?? '');
  if (!boundary) throw new ApiError(400, 'malformed_multipart', `the Content-Type has no boundary; send ${EXPECTED_TYPE}`);
  return boundary;
}

/**
 * Checks that the client accepts the DICOM JSON answer (PS3.18 8.7: an origin server answers 406 when it
 * offers none of the acceptable media types; btd offers `application/dicom+json`, not the XML form).
 */
export function checkStowAccept(accept: string | undefined): void {
  if (!accept) return;
  const ranges = accept.split(',').map((range) => range.split(';')[0]!.trim().toLowerCase());
  const served = ['application/dicom+json', 'application/json', 'application/*', '*/*'];
  if (!ranges.some((range) => served.includes(range))) {
    throw new ApiError(406, 'not_acceptable', `Accept ${JSON.stringify(accept)}: the answer is application/dicom+json`);
  }
}

/** Longest preamble read before the first delimiter (RFC 2046 5.1.1 allows one; clients send a CRLF or a line). */
const MAX_PREAMBLE_BYTES = 8192;

function translateError(error: unknown, limits: StowBodyLimits, parts: number): unknown {
  if (isClientAbort(error)) return new ApiError(400, 'request_aborted', 'the client closed the connection before the body ended');
  if (error instanceof MaxFileSizeExceededError) {
    return new ApiError(413, 'file_too_large', `instance ${parts + 1} is larger than the limit of ${limits.maxBytes} bytes`);
  }
  if (error instanceof MaxPartsExceededError) return new ApiError(413, 'too_many_files', `at most ${limits.maxParts} instances per request`);
  if (error instanceof MaxTotalSizeExceededError) return submissionTooLarge(limits.maxTotalBytes);
  if (error instanceof MultipartParseError) return new ApiError(400, 'malformed_multipart', `the multipart body cannot be parsed (${error.message})`);
  return error;
}

/**
 * Reads every part of a STOW-RS body. Nothing is stored here. Each chunk of the body is counted in
 * `held` as it arrives.
 *
 * @throws ApiError 413 past a limit, 400 for a malformed body or one without parts; RetryLaterError 503 when `held` cannot take the bytes
 */
export async function readStowParts(body: Readable, boundary: string, limits: StowBodyLimits, held: UploadReservation): Promise<StowPart[]> {
  const parts: StowPart[] = [];
  try {
    const parser = new MultipartParser(boundary, { maxFileSize: limits.maxBytes, maxParts: limits.maxParts, maxTotalSize: limits.maxTotalBytes });
    for await (const chunk of fromFirstDelimiter(counted(body as AsyncIterable<Buffer>, held), boundary)) {
      // The epilogue, after the close delimiter, is not part of the body either; it is read and dropped.
      if (isFinished(parser)) continue;
      for (const part of parser.write(chunk)) parts.push({ index: parts.length + 1, contentType: part.mediaType, bytes: part.bytes });
    }
    parser.finish();
  } catch (error) {
    throw translateError(error, limits, parts.length);
  }
  if (parts.length === 0) throw new ApiError(400, 'no_files', 'the request holds no DICOM instance');
  return parts;
}

/**
 * The body from its first delimiter on: the preamble before it (RFC 2046 5.1.1), which clients such
 * as dicomweb-client send as one CRLF, is not part of any instance. A body with no delimiter in its
 * first {@link MAX_PREAMBLE_BYTES} is malformed.
 */
async function* fromFirstDelimiter(body: AsyncIterable<Buffer>, boundary: string): AsyncGenerator<Buffer> {
  const delimiter = Buffer.from(`--${boundary}`);
  let preamble: Buffer | undefined = Buffer.alloc(0);
  for await (const chunk of body) {
    if (!preamble) {
      yield chunk;
      continue;
    }
    const seen: Buffer = Buffer.concat([preamble, chunk]);
    const at = seen.indexOf(delimiter);
    if (at >= 0) {
      preamble = undefined;
      yield seen.subarray(at);
    } else if (seen.length > MAX_PREAMBLE_BYTES + delimiter.length) {
      throw new MultipartParseError(`no boundary delimiter in the first ${MAX_PREAMBLE_BYTES} bytes`);
    } else {
      preamble = seen;
    }
  }
  // Left to the parser, which names what is missing.
  if (preamble?.length) yield preamble;
}

async function* counted(body: AsyncIterable<Buffer>, held: UploadReservation): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    held.add(chunk.length);
    yield chunk;
  }
}

/** Whether the parser has read the close delimiter (its `finish` throws until then). */
function isFinished(parser: MultipartParser): boolean {
  try {
    parser.finish();
    return true;
  } catch {
    return false;
  }
}
