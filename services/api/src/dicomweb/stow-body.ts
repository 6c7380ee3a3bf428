import { Readable } from 'node:stream';
import {
  MaxFileSizeExceededError,
  MaxPartsExceededError,
  MaxTotalSizeExceededError,
  MultipartParseError,
  getMultipartBoundary,
  parseMultipartStream,
} from '@remix-run/multipart-parser';
import { ApiError } from '../errors/api-error.js';

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

function translateError(error: unknown, limits: StowBodyLimits, parts: number): unknown {
  if (error instanceof MaxFileSizeExceededError) {
    return new ApiError(413, 'file_too_large', `instance ${parts + 1} is larger than the limit of ${limits.maxBytes} bytes`);
  }
  if (error instanceof MaxPartsExceededError) return new ApiError(413, 'too_many_files', `at most ${limits.maxParts} instances per request`);
  if (error instanceof MaxTotalSizeExceededError) {
    return new ApiError(413, 'request_too_large', `the instances add up to more than ${limits.maxBytes * limits.maxParts} bytes`);
  }
  if (error instanceof MultipartParseError) return new ApiError(400, 'malformed_multipart', `the multipart body cannot be parsed (${error.message})`);
  return error;
}

/**
 * Reads every part of a STOW-RS body. Nothing is stored here.
 *
 * @throws ApiError 413 past a limit, 400 for a malformed body or one without parts
 */
export async function readStowParts(body: Readable, boundary: string, limits: StowBodyLimits): Promise<StowPart[]> {
  const parts: StowPart[] = [];
  try {
    const stream = Readable.toWeb(body) as ReadableStream<Uint8Array>;
    const options = { boundary, maxFileSize: limits.maxBytes, maxParts: limits.maxParts, maxTotalSize: limits.maxBytes * limits.maxParts };
    for await (const part of parseMultipartStream(stream, options)) {
      parts.push({ index: parts.length + 1, contentType: part.mediaType, bytes: part.bytes });
    }
  } catch (error) {
    throw translateError(error, limits, parts.length);
  }
  if (parts.length === 0) throw new ApiError(400, 'no_files', 'the request holds no DICOM instance');
  return parts;
}
