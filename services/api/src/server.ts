import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from '@btd/shared';
import { apiApp, type ApiRoutes } from './app.js';
import { handleClientError } from './errors/client-error-handler.js';
import { answerFrameworkError, MAX_PATH_PARAMETER_LENGTH } from './errors/framework-errors.js';
import type { ApiContext } from './context.js';

/** Request log lines carry the path only: query strings may hold external ids (accession numbers). */
const requestSerializers = {
  req: (request: { method: string; url: string; id: string }) => ({ method: request.method, path: request.url.split('?')[0], id: request.id }),
};

/** A client's request id that goes into the log as it is: 1–128 letters, digits and . _ : - (a UUID, a trace id). */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id of a request in the log: the client's `X-Request-Id`, so that its own logs and ours can be
 * matched, when it is a plain id; else (a megabyte of text, a line break forging a log line) a new one.
 */
export function requestIdOf(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && ACCEPTED_REQUEST_ID.test(given) ? given : randomUUID();
}

/** Builds the Fastify instance with the application registered, ready to listen or `inject`. */
export async function buildServer(ctx: ApiContext, logger: Logger, routes: readonly ApiRoutes[] = []): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger.child({}, { serializers: requestSerializers }) as FastifyBaseLogger,
    // JSON bodies are small; uploads go through multipart with their own limits.
    bodyLimit: 1024 * 1024,
    // Node closes a connection whose request has not arrived whole, headers and body, this long after
    // its first byte; it checks every open connection at the interval (30 s unless given). Its headers
    // timeout (60 s by default) must not exceed the request timeout: Node would swap the two, and
    // give the whole request the headers' 60 s, counted from the request's start.
    requestTimeout: ctx.config.httpRequestTimeoutMs,
    http: {
      headersTimeout: Math.min(60_000, ctx.config.httpRequestTimeoutMs),
      connectionsCheckingInterval: Math.min(30_000, Math.ceil(ctx.config.httpRequestTimeoutMs / 4)),
    },
    clientErrorHandler: handleClientError,
    frameworkErrors: answerFrameworkError,
    routerOptions: { maxParamLength: MAX_PATH_PARAMETER_LENGTH },
    genReqId: requestIdOf,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  await app.register(apiApp, { ctx, routes });
  await app.ready();
  return app;
}

/** Starts listening; returns the base URL. */
export async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${shownHost}:${actualPort}`;
}
