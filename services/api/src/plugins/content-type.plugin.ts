import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../errors/api-error.js';

/** Whether the request's route reads its body itself (an upload: `consumes` names a type other than JSON). */
function readsOwnBody(request: FastifyRequest): boolean {
  const consumes = (request.routeOptions.schema as { consumes?: readonly string[] } | undefined)?.consumes;
  return consumes?.some((type) => type !== 'application/json') ?? false;
}

/**
 * A body of a media type no parser takes (`application/octet-stream`, a bare `image/jpeg` or
 * `application/dicom`, a form url-encoded, none at all): an upload route gets it unread, so that it
 * refuses it with its own reason and the form it takes, as it does a JSON body; any other route, which
 * takes JSON, answers 415 `unsupported_media_type` saying so. Fastify answered both with its own
 * `fst_err_ctp_invalid_media_type` and no word of what to send.
 */
export const contentTypePlugin = fp(async (app: FastifyInstance) => {
  app.addContentTypeParser('*', (request, payload, done) => {
    if (readsOwnBody(request)) {
      done(null, payload);
      return;
    }
    const type = request.headers['content-type'];
    const sent = type ? `Content-Type ${JSON.stringify(type)}` : 'a body without Content-Type';
    done(new ApiError(415, 'unsupported_media_type', `${sent}; send a JSON object as application/json`));
  });
});
