import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../errors/api-error.js';

/**
 * Headers a request may carry once. Node keeps the first of two `Authorization` or `Content-Type`
 * headers and drops the other, and joins two `Idempotency-Key` headers into one key ("a, b"): either
 * way the request would be served by a reading of it that its sender may not have meant.
 */
const SINGLE_HEADERS = ['Authorization', 'Content-Type', 'Idempotency-Key'] as const;

/**
 * The headers of {@link SINGLE_HEADERS} that `request` carries more than once, counted in its raw
 * headers (names and values in turn, every copy as sent), which an injected request has too.
 */
function repeatedHeaders(request: FastifyRequest): string[] {
  const names = request.raw.rawHeaders.filter((_field, index) => index % 2 === 0).map((name) => name.toLowerCase());
  return SINGLE_HEADERS.filter((header) => names.filter((name) => name === header.toLowerCase()).length > 1);
}

/**
 * Refuses, with 400 `duplicate_header` naming the header, a request that carries one of
 * {@link SINGLE_HEADERS} more than once. Runs on `onRequest`, before the key is read and before any
 * body, so that nothing is done under a key or idempotency key the client did not send alone.
 */
export const singleHeadersPlugin = fp(async (app: FastifyInstance) => {
  app.addHook('onRequest', async (request) => {
    const repeated = repeatedHeaders(request);
    if (repeated.length === 0) return;
    const names = repeated.join(' or ');
    throw new ApiError(400, 'duplicate_header', `the request carries more than one ${names} header; send ${repeated.length > 1 ? 'each' : 'it'} once`);
  });
});
