import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './api-error.js';

/** Longest path parameter the router takes: ids are at most 100 characters (`IdPattern`), a training's its prefix more. */
export const MAX_PATH_PARAMETER_LENGTH = 200;

/** The API's refusal of a path the router cannot take. */
function refusalOf(error: FastifyError): ApiError {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return new ApiError(400, 'invalid_request', `a part of the path is longer than ${MAX_PATH_PARAMETER_LENGTH} characters, which no id is`);
  }
  if (error.code === 'FST_ERR_BAD_URL') return new ApiError(400, 'invalid_request', 'the path is not valid: each % must be followed by two hexadecimal digits');
  return new ApiError(400, 'invalid_request', 'the request cannot be routed');
}

/**
 * Fastify's `frameworkErrors`: a path that the router refuses before any route is found (a part too
 * long, a broken percent-encoding) is answered by the API's error handler, with its `code` and shape,
 * instead of Fastify's `FST_ERR_MAX_PARAM_LENGTH` (414) or `FST_ERR_BAD_URL`, which repeated the path.
 */
export function answerFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void reply.send(refusalOf(error));
}
