import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';
import { closeBatch, closedBatchCheck, createBatch, ownedBatch, readBatchView, readStudyPage } from '../batches/batch-service.js';
import { studyPageView } from '../batches/batch-view.js';
import { readStudyForm } from '../intake/read-study-form.js';
import { clientOf } from '../plugins/auth.plugin.js';
import { BatchPageQuerySchema, BatchParamsSchema, BatchViewSchema, CreateBatchSchema } from '../schemas/batch.schemas.js';
import { bearerAuth, commonErrors, IdempotencyHeadersSchema, jsonBodyErrors } from '../schemas/common.schemas.js';
import { studyUploadSchema } from '../schemas/study.schemas.js';
import { submitStudy } from '../studies/submit-study.js';
import { checkCallbackUrl } from '../webhooks/callback-url.js';
import { intakeChecksOf, multipartValidator, requireRedis, sendStored, withUploadMemory } from './route-helpers.js';
import { formLimits } from './studies.routes.js';

const conflictErrors = { ...commonErrors, 409: Type.Ref('Error') };

/**
 * `/v1/batches`: create a batch, add studies to it in as many requests as suits the client
 * (each one a normal study submission), close it, and page through its studies.
 */
export const batchesRoutes: FastifyPluginAsyncTypebox<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.post(
    '/v1/batches',
    {
      schema: {
        tags: ['batches'],
        summary: 'Create a batch; then add studies with POST /v1/batches/:id/studies and close it',
        security: bearerAuth,
        headers: IdempotencyHeadersSchema,
        body: CreateBatchSchema,
        response: { 201: BatchViewSchema, ...conflictErrors, ...jsonBodyErrors, 422: Type.Ref('Error') },
      },
      preHandler: requireRedis(ctx),
    },
    async (request, reply) => {
      if (request.body.callbackUrl) checkCallbackUrl(request.body.callbackUrl, ctx.callbackUrls);
      const created = await createBatch(ctx, clientOf(request), request.body, request.headers['idempotency-key']);
      return sendStored(reply, created);
    },
  );

  app.post(
    '/v1/batches/:id/studies',
    {
      schema: {
        tags: ['batches'],
        summary: 'Add one study to an open batch (same form as POST /v1/studies)',
        description:
          'A batch closed or done answers 409 batch_not_open, but a retry of a study it took (same files, and the same Idempotency-Key or externalId) ' +
          'is answered with that study. Send the text fields before the files: a chunk whose externalId comes first and names no study is then ' +
          'refused before any of its files is read (otherwise once the form is read, before any file is inspected).',
        security: bearerAuth,
        params: BatchParamsSchema,
        ...studyUploadSchema,
      },
      validatorCompiler: multipartValidator,
      preHandler: requireRedis(ctx),
    },
    async (request, reply) => {
      const client = clientOf(request);
      // A batch unknown or another client's is refused (404) before any file is read; one no longer
      // open (409) as soon as the text fields tell that the chunk is no retry of a study it took.
      // Storing a new one is refused atomically with the close.
      const batch = await ownedBatch(ctx, client, request.params.id);
      const idempotencyKey = request.headers['idempotency-key'];
      const beforeFiles = closedBatchCheck(ctx, client.id, batch, idempotencyKey);
      return withUploadMemory(ctx, request, async (held) => {
        const form = await readStudyForm(request, formLimits(ctx), intakeChecksOf(ctx, reply), held, beforeFiles);
        const target = { clientId: client.id, batch, idempotencyKey };
        return sendStored(reply, await submitStudy(ctx, form, target, request.log));
      });
    },
  );

  app.post(
    '/v1/batches/:id/close',
    {
      schema: {
        tags: ['batches'],
        summary: 'Close a batch: no more studies; it completes (and its webhook fires) when all have finished',
        security: bearerAuth,
        params: BatchParamsSchema,
        response: { 200: BatchViewSchema, ...commonErrors },
      },
      preHandler: requireRedis(ctx),
    },
    async (request) => {
      const batch = await closeBatch(ctx, await ownedBatch(ctx, clientOf(request), request.params.id));
      return readBatchView(ctx, batch, 0, 100);
    },
  );

  const pageSchema = { params: BatchParamsSchema, querystring: BatchPageQuerySchema };

  app.get(
    '/v1/batches/:id',
    {
      schema: {
        tags: ['batches'],
        summary: 'Counts per state and one page of per-study status',
        security: bearerAuth,
        ...pageSchema,
        response: { 200: BatchViewSchema, ...commonErrors },
      },
    },
    async (request) => {
      const batch = await ownedBatch(ctx, clientOf(request), request.params.id);
      return readBatchView(ctx, batch, request.query.after ?? 0, request.query.limit ?? 100);
    },
  );

  // The batch's `links.studies`: where studies are added, and where a client following the link reads them.
  app.get(
    '/v1/batches/:id/studies',
    {
      schema: {
        tags: ['batches'],
        summary: 'One page of per-study status, as under `studies` in GET /v1/batches/:id (`next` holds the query of the next page)',
        security: bearerAuth,
        ...pageSchema,
        response: { 200: BatchViewSchema.properties.studies, ...commonErrors },
      },
    },
    // The page alone: the batch's webhook delivery, which its view shows, is not read.
    async (request) => {
      const batch = await ownedBatch(ctx, clientOf(request), request.params.id);
      return studyPageView(await readStudyPage(ctx, batch, request.query.after ?? 0, request.query.limit ?? 100));
    },
  );
};
