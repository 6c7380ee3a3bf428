import type { FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors/api-error.js';
import { DependencyUnavailableError } from '../errors/dependency-unavailable.error.js';
import type { IntakeChecks } from '../intake/input-formats.js';
import type { StoredResponse } from '../store/idempotency-store.js';
import type { UploadReservation } from '../uploads/upload-memory-budget.js';

/**
 * Validator for multipart routes: the body schema only documents the form (the handler reads
 * and checks the parts as they stream in); params, query and headers are validated as usual.
 */
export const multipartValidator: FastifySchemaCompiler<unknown> = (route) =>
  route.httpPart === 'body' ? () => true : TypeBoxValidatorCompiler(route as Parameters<typeof TypeBoxValidatorCompiler>[0]);

/**
 * preHandler that answers 503 before a large upload is read when Redis is already known to be
 * down, rather than after.
 */
export function requireRedis(ctx: ApiContext) {
  return async (): Promise<void> => {
    if (ctx.redis.status !== 'ready') throw new DependencyUnavailableError('redis');
  };
}

/** Sends a (possibly replayed) stored response with its Location and a replay marker. */
export function sendStored(reply: FastifyReply, response: StoredResponse & { replayed: boolean }) {
  if (response.location) reply.header('location', response.location);
  if (response.replayed) reply.header('idempotent-replayed', 'true');
  return reply.code(response.statusCode).send(response.body);
}

/**
 * The intake checks of one upload, with a signal aborted once its client has gone: the connection
 * closed (by the client, or at a timeout) before the answer was sent. Its decodes still waiting for
 * memory (MAX_INFLIGHT_DECODE_BYTES) then leave the queue, never run, rather than decode for no one.
 * (Node closes the request itself as soon as its body has been read, so the response tells.)
 */
export function intakeChecksOf(ctx: ApiContext, reply: FastifyReply): IntakeChecks {
  const gone = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) gone.abort(new ApiError(400, 'request_aborted', 'the connection closed before the upload was checked'));
  });
  return { ...ctx.intakeChecks, signal: gone.signal };
}

/** Most bytes that the parts' headers (80 KiB each at most, as the multipart readers allow) and boundaries, the text fields, a preamble and an epilogue add to a request's files. */
function framingAllowance(maxParts: number): number {
  return (maxParts + 10) * 81 * 1024 + (1 << 20);
}

/**
 * Runs `work` on an upload with its bytes held against the memory all uploads share: what its
 * Content-Length announces (up to the most a request may hold) at once, more as more streams in. The
 * bytes are given back when `work` ends, whether it answered, failed, or the client went away or
 * timed out (the body then ends in an error that ends `work` too). A request that announces more than
 * its files may add up to, with their framing, is refused before its body is read.
 *
 * @throws ApiError 413 when the announced bytes are more than a request may hold
 * @throws RetryLaterError 503 when the announced bytes do not fit
 */
export async function withUploadMemory<T>(ctx: ApiContext, request: FastifyRequest, work: (held: UploadReservation) => Promise<T>): Promise<T> {
  const announced = Number.parseInt(request.headers['content-length'] ?? '0', 10) || 0;
  const { maxSubmissionBytes, maxImagesPerStudy } = ctx.config;
  if (announced > maxSubmissionBytes + framingAllowance(maxImagesPerStudy)) {
    throw new ApiError(
      413,
      'request_too_large',
      `the request announces ${announced} bytes (Content-Length), more than its files may add up to (${maxSubmissionBytes} bytes, MAX_SUBMISSION_BYTES) with their multipart framing; send fewer in one request`,
    );
  }
  const held = ctx.uploadMemory.reserve(Math.min(announced, ctx.config.maxSubmissionBytes));
  try {
    return await work(held);
  } finally {
    held.release();
  }
}
