import path from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { MultipartFile } from '@fastify/multipart';
import type { StudyPriority } from '@btd/shared';
import { ApiError } from '../errors/api-error.js';
import type { UploadReservation } from '../uploads/upload-memory-budget.js';
import { checkCallbackUrl, type CallbackUrlPolicy } from '../webhooks/callback-url.js';
import type { IntakeChecks } from './input-formats.js';
import { inspectUpload, type AcceptedImage, type UploadLimits } from './inspect-upload.js';

/** Text fields of a study submission, checked. */
export interface StudyFields {
  externalId?: string;
  priority?: StudyPriority;
  callbackUrl?: string;
}

/** A fully read and checked multipart submission. */
export interface StudyForm {
  readonly fields: StudyFields;
  readonly images: readonly AcceptedImage[];
}

/** Limits of one submission. */
export interface StudyFormLimits extends UploadLimits {
  readonly maxFiles: number;
  /** Most bytes of all the files together, held in memory until every one is checked. */
  readonly maxTotalBytes: number;
  /** What the callbackUrl field must be. */
  readonly callbacks: CallbackUrlPolicy;
}

/**
 * Looks at a form's text fields before its files: at its first file part, with the fields sent before
 * that part (`complete` false), and once every part is read, before any file is inspected (`complete`
 * true). What it throws is the answer, given without the files read, or without them inspected.
 */
export type FieldsCheck = (fields: StudyFields, complete: boolean) => Promise<void>;

const FILE_FIELDS = new Set(['file', 'files']);
const TEXT_FIELDS = ['externalId', 'priority', 'callbackUrl'] as const;
const EXPECTED = `expected file, ${TEXT_FIELDS.join(', ')}`;
const EXTERNAL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

function badField(field: string, message: string): ApiError {
  return new ApiError(400, 'invalid_field', `field "${field}" ${message}`);
}

/** Checks the text fields; exported for STOW-RS, which takes them as query parameters. */
export function checkStudyFields(raw: Readonly<Record<string, string>>, callbacks: CallbackUrlPolicy): StudyFields {
  const fields: StudyFields = {};
  if (raw.externalId !== undefined) {
    if (!EXTERNAL_ID.test(raw.externalId)) {
      throw badField('externalId', 'must be 1–128 characters: letters, digits and . _ : / - (starting with a letter or digit)');
    }
    fields.externalId = raw.externalId;
  }
  if (raw.priority !== undefined) {
    if (raw.priority !== 'stat' && raw.priority !== 'routine') throw badField('priority', 'must be "stat" or "routine"');
    fields.priority = raw.priority;
  }
  if (raw.callbackUrl !== undefined) fields.callbackUrl = checkCallbackUrl(raw.callbackUrl, callbacks);
  return fields;
}

function cleanFilename(given: string | undefined, index: number): string {
  // Browsers may send a full path; control characters (C0, C1) would end up in JSON and logs, and
  // format characters (right-to-left overrides, zero-width ones) would show a viewer another name.
  const printable = (given ?? '').replace(/[\p{Cc}\p{Cf}]/gu, '');
  const base = path.basename(printable.replaceAll('\\', '/'));
  return base.slice(0, 200) || `image-${index + 1}`;
}

/** A request whose files add up to more than `maxTotalBytes`; shared with STOW-RS, whose instances count the same way. */
export function submissionTooLarge(maxTotalBytes: number): ApiError {
  return new ApiError(413, 'request_too_large', `the files add up to more than ${maxTotalBytes} bytes (MAX_SUBMISSION_BYTES); send fewer in one request`);
}

function translateMultipartError(error: unknown, currentFile: string, limits: StudyFormLimits): unknown {
  if (error instanceof ApiError) return error;
  const code = (error as { code?: string }).code;
  if (code === 'FST_REQ_FILE_TOO_LARGE') {
    return new ApiError(413, 'file_too_large', `${JSON.stringify(currentFile)}: is larger than the limit of ${limits.maxBytes} bytes`, {
      file: currentFile,
    });
  }
  if (code === 'FST_FILES_LIMIT') return new ApiError(413, 'too_many_files', `at most ${limits.maxFiles} files per study`);
  if (code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') return new ApiError(413, 'too_many_fields', 'too many form fields');
  if (code === 'FST_PROTO_VIOLATION') return new ApiError(400, 'unknown_field', `unknown form field; ${EXPECTED}`);
  if (code === 'FST_INVALID_JSON_FIELD_ERROR') {
    return new ApiError(400, 'invalid_field', 'a form field typed application/json does not hold valid JSON; send the study fields as plain text');
  }
  if (error instanceof Error && /multipart|boundary|unexpected end of form/i.test(error.message)) {
    return new ApiError(400, 'malformed_multipart', `the multipart body cannot be parsed (${error.message})`);
  }
  return error;
}

/**
 * The bytes of a file part, each chunk counted as it arrives: against the request's limit, then
 * against the memory that all uploads share (`held`), so a refusal comes before the rest is read.
 */
async function readFile(part: MultipartFile, count: (bytes: number) => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of part.file as AsyncIterable<Buffer>) {
    count(chunk.length);
    chunks.push(chunk);
  }
  // Past the file size limit busboy stops the file short and marks it truncated.
  if (part.file.truncated) throw Object.assign(new Error('request file too large'), { code: 'FST_REQ_FILE_TOO_LARGE' });
  return Buffer.concat(chunks);
}

async function readParts(request: FastifyRequest, limits: StudyFormLimits, held: UploadReservation, beforeFiles: FieldsCheck | undefined) {
  const raw: Record<string, string> = {};
  const files: { filename: string; bytes: Buffer }[] = [];
  let current = '';
  let totalBytes = 0;
  const count = (bytes: number) => {
    totalBytes += bytes;
    if (totalBytes > limits.maxTotalBytes) throw submissionTooLarge(limits.maxTotalBytes);
    held.add(bytes);
  };
  try {
    const parts = request.parts({
      // A "file" part sent without a filename (`curl -F file=<scan.jpg`) is a file too, named by its place.
      isPartAFile: (fieldName, contentType, fileName) => FILE_FIELDS.has(fieldName ?? '') || contentType === 'application/octet-stream' || fileName !== undefined,
      limits: { fileSize: limits.maxBytes, files: limits.maxFiles, fields: 10, fieldSize: 4096, parts: limits.maxFiles + 10 },
    });
    for await (const part of parts) {
      if (part.type === 'file') {
        current = cleanFilename(part.filename, files.length);
        if (!FILE_FIELDS.has(part.fieldname)) throw new ApiError(400, 'unknown_field', `unknown file field "${part.fieldname}"; ${EXPECTED}`);
        if (files.length === 0 && beforeFiles) await beforeFiles(checkStudyFields(raw, limits.callbacks), false);
        files.push({ filename: current, bytes: await readFile(part, count) });
      } else {
        if (!(TEXT_FIELDS as readonly string[]).includes(part.fieldname)) {
          throw new ApiError(400, 'unknown_field', `unknown field "${part.fieldname}"; ${EXPECTED}`);
        }
        if (part.fieldname in raw) throw new ApiError(400, 'duplicate_field', `field "${part.fieldname}" is given twice`);
        raw[part.fieldname] = String(part.value);
      }
    }
  } catch (error) {
    throw translateMultipartError(error, current, limits);
  }
  return { raw, files };
}

/**
 * Reads a `multipart/form-data` study submission completely and checks every part: known
 * fields only, valid values, at least one file, and each file's type, size, pixel count and
 * decodability. Nothing is stored here, so a rejected request leaves nothing behind. The files'
 * bytes are counted in `held` as they arrive; `beforeFiles` may refuse the form before they are
 * read, or before they are inspected.
 *
 * @throws ApiError (4xx) with the precise reason; RetryLaterError 503 when `held` cannot take the bytes
 */
export async function readStudyForm(
  request: FastifyRequest,
  limits: StudyFormLimits,
  checks: IntakeChecks,
  held: UploadReservation,
  beforeFiles?: FieldsCheck,
): Promise<StudyForm> {
  if (!request.isMultipart()) {
    throw new ApiError(415, 'not_multipart', 'send the study as multipart/form-data with one or more "file" parts');
  }
  const { raw, files } = await readParts(request, limits, held, beforeFiles);
  const fields = checkStudyFields(raw, limits.callbacks);
  if (files.length === 0) throw new ApiError(400, 'no_files', 'the study has no image: add one or more "file" parts');
  await beforeFiles?.(fields, true);
  // Side by side (DICOM frames decode on the intake threads); a refusal names the first bad file in order.
  const inspected = await Promise.allSettled(files.map(async (file) => inspectUpload(file.bytes, file.filename, limits, checks)));
  const refused = inspected.find((result) => result.status === 'rejected');
  if (refused) throw refused.reason;
  const images = inspected.map((result) => (result as PromiseFulfilledResult<AcceptedImage>).value);
  return { fields, images };
}
