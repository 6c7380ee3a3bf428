import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';
import { requireAdmin } from '../plugins/auth.plugin.js';
import { bearerAuth, commonErrors } from '../schemas/common.schemas.js';

const QueueStatusSchema = Type.Object({
  name: Type.String(),
  counts: Type.Record(Type.String(), Type.Integer()),
  workers: Type.Integer(),
});

/** `/v1/admin/*`: operator views, for clients listed in `ADMIN_CLIENTS`. */
export const adminRoutes: FastifyPluginAsyncTypebox<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.get(
    '/v1/admin/queues',
    {
      schema: {
        tags: ['operations'],
        summary: 'Job counts and connected workers per queue (admin)',
        security: bearerAuth,
        response: { 200: Type.Object({ queues: Type.Array(QueueStatusSchema) }), 403: { $ref: 'Error' }, ...commonErrors },
      },
      preHandler: requireAdmin,
    },
    async () => {
      const queues = Object.values(ctx.queues);
      const statuses = await Promise.all(
        queues.map(async (queue) => ({
          name: queue.name,
          counts: await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'),
          workers: (await queue.getWorkers()).length,
        })),
      );
      return { queues: statuses };
    },
  );
};
