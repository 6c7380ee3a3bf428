import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';

const CheckSchema = Type.Object({ ok: Type.Boolean(), error: Type.Optional(Type.String()) });
const ReadySchema = Type.Object({ ready: Type.Boolean(), checks: Type.Object({ redis: CheckSchema, s3: CheckSchema }) });

/** What one readiness check found; `cause` stays in the log. */
interface CheckOutcome {
  ok: boolean;
  error?: string;
  cause?: unknown;
}

async function check(probe: () => Promise<unknown>, timeoutMs: number): Promise<CheckOutcome> {
  const timedOut = new Error(`no answer within ${timeoutMs} ms`);
  try {
    await Promise.race([probe(), new Promise((_, reject) => setTimeout(() => reject(timedOut), timeoutMs).unref())]);
    return { ok: true };
  } catch (error) {
    // The Redis or S3 client's message names hosts and ports inside the deployment (`connect ECONNREFUSED 10.0.3.7:6379`):
    // the unauthenticated answer says only that the check failed, the log says why.
    return { ok: false, error: error === timedOut ? timedOut.message : 'unreachable', cause: error };
  }
}

/** `/healthz` (process alive), `/readyz` (Redis and S3 answer) and `/metrics` (Prometheus). */
export const operationsRoutes: FastifyPluginAsyncTypebox<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.get(
    '/healthz',
    { schema: { tags: ['operations'], summary: 'Liveness: the process answers', response: { 200: Type.Object({ ok: Type.Boolean() }) } } },
    async () => ({ ok: true }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: Redis and S3 are reachable (503 otherwise)',
        response: { 200: ReadySchema, 503: ReadySchema },
      },
    },
    async (request, reply) => {
      const [redis, s3] = await Promise.all([check(() => ctx.redis.ping(), 2000), check(() => ctx.objectStore.ping(), 2000)]);
      for (const [dependency, { ok, cause }] of Object.entries({ redis, s3 })) {
        if (!ok) request.log.warn({ err: cause, dependency }, 'readiness check failed');
      }
      const shown = ({ ok, error }: CheckOutcome) => ({ ok, ...(error ? { error } : {}) });
      const ready = redis.ok && s3.ok;
      return reply.code(ready ? 200 : 503).send({ ready, checks: { redis: shown(redis), s3: shown(s3) } });
    },
  );

  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics', produces: ['text/plain'] } }, async (_request, reply) => {
    const body = await ctx.metrics.registry.metrics();
    return reply.type(ctx.metrics.registry.contentType).send(body);
  });
};
