import type { FastifyReply, FastifySchemaCompiler } from 'fastify';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';
import { DependencyUnavailableError } from '../errors/dependency-unavailable.error.js';
import type { StoredResponse } from '../store/idempotency-store.js';

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
