import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';
import { clientOf } from '../plugins/auth.plugin.js';
import { bearerAuth, commonErrors } from '../schemas/common.schemas.js';
import { clientWebhookSecret } from '../webhooks/webhook-signature.js';

const WebhookSecretSchema = Type.Object({
  secret: Type.String({ description: 'Verifies X-Btd-Signature: HMAC-SHA256 under this secret (its text, as UTF-8) over "<t>.<raw body>".' }),
});

/** `/v1/webhooks/secret`: the secret that signs the caller's webhooks, for its receivers to verify them. */
export const webhooksRoutes: FastifyPluginAsyncTypebox<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.get(
    '/v1/webhooks/secret',
    {
      schema: {
        tags: ['webhooks'],
        summary: "The secret your webhooks are signed with (each client's is its own)",
        security: bearerAuth,
        response: { 200: WebhookSecretSchema, ...commonErrors },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return { secret: clientWebhookSecret(ctx.webhookSecret, clientOf(request).id) };
    },
  );
};
