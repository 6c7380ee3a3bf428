import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../errors/api-error.js';
import { isClientAbort } from '../errors/client-abort.js';
import { unavailableDependency } from '../errors/dependency-errors.js';
import { RetryLaterError } from '../errors/retry-later.error.js';

interface ValidationIssue {
  keyword?: string;
  instancePath?: string;
  message?: string;
  params?: { allowedValue?: unknown; allowedValues?: unknown[]; additionalProperties?: unknown[] };
}

/**
 * The values allowed at each place where a union of constants (`Type.Union([Type.Literal(…), …])`, a
 * model task say) failed: its violations are one per constant ("must be equal to constant") and one for
 * the union ("must match a schema in anyOf"), which say nothing of the values it takes.
 */
function allowedConstants(issues: readonly ValidationIssue[]): Map<string, unknown[]> {
  const allowed = new Map<string, unknown[]>();
  for (const issue of issues) {
    if (issue.keyword !== 'const' || !issue.params || !('allowedValue' in issue.params)) continue;
    const path = issue.instancePath ?? '';
    allowed.set(path, [...(allowed.get(path) ?? []), issue.params.allowedValue]);
  }
  return allowed;
}

/** One readable sentence per schema violation, e.g. `body/priority must be one of: stat, routine`. */
function describeValidation(context: string | undefined, issues: readonly ValidationIssue[]): string {
  const constants = allowedConstants(issues);
  const sentences = issues.map((issue) => {
    const where = `${context ?? 'request'}${issue.instancePath ?? ''}`;
    const union = issue.keyword === 'const' || issue.keyword === 'anyOf' ? constants.get(issue.instancePath ?? '') : undefined;
    const allowed = issue.params?.allowedValues ?? union;
    if (allowed) return `${where} must be one of: ${allowed.join(', ')}`;
    if (issue.params?.additionalProperties) return `${where} has unknown field(s): ${issue.params.additionalProperties.join(', ')}`;
    return `${where} ${issue.message ?? 'is invalid'}`;
  });
  return [...new Set(sentences.filter((s) => !s.endsWith('schema is false')))].join('; ');
}

/** Fastify's refusals of a JSON body, in the API's own codes and words. */
function refusedBody(error: FastifyError, request: FastifyRequest): [number, string, string] | undefined {
  if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return [400, 'invalid_request', 'the body is not valid JSON'];
  if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return [400, 'invalid_request', 'the body is empty; send a JSON object (`{}` for none of the fields)'];
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return [413, 'request_too_large', `the body is larger than the ${request.routeOptions.bodyLimit} bytes a JSON request may hold`];
  }
  return undefined;
}

function send(reply: FastifyReply, statusCode: number, code: string, message: string, extra: object = {}) {
  // Refused before its body was read to the end (a too-large or unknown part), a request would
  // keep its connection busy for the rest of the upload and hold up a graceful shutdown: close it.
  if (!reply.request.raw.complete) reply.header('connection', 'close');
  return reply.code(statusCode).send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...extra });
}

function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof ApiError) {
    request.log.info({ code: error.code, statusCode: error.statusCode }, 'request rejected');
    if (error instanceof RetryLaterError) reply.header('retry-after', String(error.retryAfterSeconds));
    return send(reply, error.statusCode, error.code, error.message, error.details);
  }
  // Only while the request's own body is still arriving: any other stream whose connection resets
  // mid-body fails with the same error, which is no fault of the client's.
  if (isClientAbort(error) && !request.raw.complete) {
    request.log.info({ code: 'request_aborted' }, 'request rejected');
    return send(reply, 400, 'request_aborted', 'the connection closed before the body ended');
  }
  const body = refusedBody(error, request);
  if (body) return send(reply, ...body);
  if (error.validation) {
    return send(reply, 400, 'invalid_request', describeValidation(error.validationContext, error.validation));
  }
  const dependency = unavailableDependency(error);
  if (dependency) {
    request.log.warn({ err: error, dependency }, 'dependency unavailable');
    reply.header('retry-after', '5');
    return send(reply, 503, `${dependency}_unavailable`, `the service cannot reach ${dependency === 'redis' ? 'its queue store' : 'its object store'}; retry later`);
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    return send(reply, status, (error.code ?? 'bad_request').toLowerCase(), error.message);
  }
  // Internal details (stack, messages of libraries) stay in the log.
  request.log.error({ err: error }, 'request failed');
  return send(reply, 500, 'internal_error', 'internal server error');
}

/** One error handler for the whole app: clear reasons for 4xx, 503 for outages, nothing internal for 5xx. */
export const errorHandlerPlugin = fp(async (app: FastifyInstance) => {
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => send(reply, 404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
});
