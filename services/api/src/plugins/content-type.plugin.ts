import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../errors/api-error.js';
import { forbiddenJsonKey } from '../errors/forbidden-json-key.js';

/** Whether the request's route reads its body itself (an upload: `consumes` names a type other than JSON). */
function readsOwnBody(request: FastifyRequest): boolean {
  const consumes = (request.routeOptions.schema as { consumes?: readonly string[] } | undefined)?.consumes;
  return consumes?.some((type) => type !== 'application/json') ?? false;
}

/** The 415 of a route that takes JSON, naming what was sent. */
function notJson(request: FastifyRequest): ApiError {
  const type = request.headers['content-type'];
  const sent = type ? `Content-Type ${JSON.stringify(type)}` : 'a body without Content-Type';
  return new ApiError(415, 'unsupported_media_type', `${sent}; send a JSON object as application/json`);
}

/**
 * A body of a media type no parser takes (`application/octet-stream`, a bare `image/jpeg` or
 * `application/dicom`, a form url-encoded, none at all): an upload route gets it unread, so that it
 * refuses it with its own reason and the form it takes, as it does a JSON body; any other route, which
 * takes JSON, answers 415 `unsupported_media_type` saying so. Fastify answered both with its own
 * `fst_err_ctp_invalid_media_type` and no word of what to send. Fastify's own `text/plain` parser goes,
 * and a multipart body (which the upload routes' parser takes for every route) sent to a route that
 * takes JSON is refused the same way: both reached the route's schema and answered 400 "body must be
 * object". A JSON body that Fastify's parser refuses for a `__proto__` or `constructor.prototype` key
 * is answered 400 `forbidden_json_key` naming the key, not "not valid JSON" as its parser words it.
 */
export const contentTypePlugin = fp(async (app: FastifyInstance) => {
  // Fastify's own JSON parser, with the server's settings, still reads the body; only its refusal is worded anew.
  const parseJson = app.getDefaultJsonParser(app.initialConfig.onProtoPoisoning ?? 'error', app.initialConfig.onConstructorPoisoning ?? 'error');
  app.addContentTypeParser<string>('application/json', { parseAs: 'string' }, (request, body, done) => {
    parseJson(request, body, (error, json) => done(error ? (forbiddenJsonKey(body) ?? error) : null, json));
  });
  app.addContentTypeParser('*', (request, payload, done) => {
    if (readsOwnBody(request)) {
      done(null, payload);
      return;
    }
    done(notJson(request));
  });
  app.removeContentTypeParser('text/plain');
  app.addHook('preValidation', async (request) => {
    if (request.isMultipart() && !readsOwnBody(request) && request.routeOptions.schema?.body !== undefined) throw notJson(request);
  });
});
