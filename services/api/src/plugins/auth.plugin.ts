import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { ApiClient, ApiKeyRing } from '../auth/api-keys.js';
import { ApiError } from '../errors/api-error.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller of a `/v1` route; null elsewhere. */
    client: ApiClient | null;
  }
}

const underV1 = (path: string): boolean => path === '/v1' || path.startsWith('/v1/') || path.startsWith('/v1?');

/**
 * Whether a request needs a key: by the route the router matched, which it found in the decoded
 * path (`/%761/models` reaches `/v1/models`), and by the raw path for a `/v1` path no route matches.
 */
function isProtected(request: FastifyRequest): boolean {
  const route = request.routeOptions.url;
  return (route !== undefined && underV1(route)) || underV1(request.url);
}

function unauthorized(message: string): ApiError {
  return new ApiError(401, 'unauthorized', message);
}

/** The challenge of a 401: the scheme that would succeed (RFC 9110, 11.6.1). */
const CHALLENGE = 'Bearer realm="btd"';

/** The caller of a `/v1` route (the auth hook has already run). */
export function clientOf(request: FastifyRequest): ApiClient {
  if (!request.client) throw unauthorized('missing API key');
  return request.client;
}

/** preHandler for admin routes: 403 unless the caller is listed in `ADMIN_CLIENTS`. */
export async function requireAdmin(request: FastifyRequest): Promise<void> {
  if (!clientOf(request).admin) throw new ApiError(403, 'forbidden', 'this route is for admin clients');
}

/**
 * Requires `Authorization: Bearer <key>` on every `/v1` route and sets `request.client`.
 * Runs on `onRequest`, before the body is read, so an unauthenticated upload costs nothing.
 * Every 401 answer, wherever it was thrown, carries the `WWW-Authenticate` challenge; no other does.
 * A request with more than one `Authorization` header is refused before this hook, by the
 * single-headers plugin: Node would keep the first and drop the others.
 */
export const authPlugin = fp<{ keyRing: ApiKeyRing }>(async (app: FastifyInstance, { keyRing }) => {
  app.decorateRequest('client', null);
  app.addHook('onRequest', async (request) => {
    if (!isProtected(request)) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('send the API key as "Authorization: Bearer <key>"');
    const client = keyRing.identify(match[1]!);
    if (!client) throw unauthorized('unknown API key');
    request.client = client;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (reply.statusCode === 401) reply.header('www-authenticate', CHALLENGE);
    return payload;
  });
});
