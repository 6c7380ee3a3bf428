import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';

const CheckSchema = Type.Object({ ok: Type.Boolean(), error: Type.Optional(Type.String()) });
const ReadySchema = Type.Object({ ready: Type.Boolean(), checks: Type.Object({ redis: CheckSchema, s3: CheckSchema }) });

async function check(probe: () => Promise<unknown>, timeoutMs: number): Promise<{ ok: boolean; error?: string }> {
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
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
    async (_request, reply) => {
      const [redis, s3] = await Promise.all([check(() => ctx.redis.ping(), 2000), check(() => ctx.objectStore.ping(), 2000)]);
      const ready = redis.ok && s3.ok;
      return reply.code(ready ? 200 : 503).send({ ready, checks: { redis, s3 } });
    },
  );

  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics', produces: ['text/plain'] } }, async (_request, reply) => {
    const body = await ctx.metrics.registry.metrics();
    return reply.type(ctx.metrics.registry.contentType).send(body);
  });
};
