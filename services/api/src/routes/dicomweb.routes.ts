import type { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.js';
import { checkStowAccept, readStowParts, stowBoundary } from '../dicomweb/stow-body.js';
import { storeInstances } from '../dicomweb/stow-instances.js';
import { stowResponse } from '../dicomweb/stow-response.js';
import { checkStudyFields } from '../intake/read-study-form.js';
import { clientOf } from '../plugins/auth.plugin.js';
import { bearerAuth } from '../schemas/common.schemas.js';
import { StowParamsSchema, stowSchema } from '../schemas/dicomweb.schemas.js';
import { studyPath } from '../studies/study-view.js';
import { intakeChecksOf, multipartValidator, requireRedis, withUploadMemory } from './route-helpers.js';

const STOW_DESCRIPTION =
  'DICOMweb STOW-RS, for a PACS or router that pushes instances: each is checked as an upload to `POST /v1/studies` is, ' +
  'the instances of each DICOM study become one btd study (study fields as query parameters), and the answer lists, per ' +
  'instance, the btd study that reports its result or why it was not stored. The same instances sent again return the same study.';

/** `/v1/dicomweb/studies`: DICOMweb STOW-RS (PS3.18 10.5) onto btd studies. */
export const dicomwebRoutes: FastifyPluginAsyncTypebox<{ ctx: ApiContext }> = async (app, { ctx }) => {
  // The body is read part by part in the handler, with the upload limits.
  app.addContentTypeParser('multipart/related', (_request, payload, done) => done(null, payload));

  const store = async (request: FastifyRequest, reply: FastifyReply, studyInstanceUid: string | undefined) => {
    const client = clientOf(request);
    checkStowAccept(request.headers.accept);
    const boundary = stowBoundary(request.headers['content-type']);
    const { maxUploadBytes, maxImagePixels, maxImagesPerStudy, maxSubmissionBytes } = ctx.config;
    // The query's fields are checked before the body is read.
    const fields = checkStudyFields(request.query as Record<string, string>, ctx.callbackUrls);
    const idempotencyKey = request.headers['idempotency-key'];
    const instances = await withUploadMemory(ctx, request, async (held) => {
      const bodyLimits = { maxBytes: maxUploadBytes, maxParts: maxImagesPerStudy, maxTotalBytes: maxSubmissionBytes };
      const parts = await readStowParts(request.body as Readable, boundary, bodyLimits, held);
      return storeInstances(
        ctx,
        parts,
        {
          clientId: client.id,
          fields,
          ...(studyInstanceUid ? { studyInstanceUid } : {}),
          ...(typeof idempotencyKey === 'string' ? { idempotencyKey } : {}),
          limits: { maxBytes: maxUploadBytes, maxPixels: maxImagePixels, maxImages: maxImagesPerStudy },
          checks: intakeChecksOf(ctx, reply),
        },
        request.log,
      );
    });
    const base = ctx.config.publicUrl ?? `${request.protocol}://${request.host}`;
    const response = stowResponse(instances, (studyId) => `${base}${studyPath(studyId)}`);
    if (response.studyIds.length === 1) reply.header('location', studyPath(response.studyIds[0]!));
    request.log.info({ instances: instances.length, studies: response.studyIds, status: response.statusCode }, 'STOW-RS request stored');
    return reply.code(response.statusCode).type('application/dicom+json').send(response.body);
  };

  const options = { validatorCompiler: multipartValidator, preHandler: requireRedis(ctx) };
  app.post(
    '/v1/dicomweb/studies',
    { schema: { tags: ['dicomweb'], summary: 'Store DICOM instances (STOW-RS)', description: STOW_DESCRIPTION, security: bearerAuth, ...stowSchema }, ...options },
    async (request, reply) => store(request, reply, undefined),
  );
  app.post(
    '/v1/dicomweb/studies/:studyInstanceUid',
    {
      schema: {
        tags: ['dicomweb'],
        summary: 'Store DICOM instances of one study (STOW-RS)',
        description: `${STOW_DESCRIPTION} Instances of another study are refused.`,
        security: bearerAuth,
        params: StowParamsSchema,
        ...stowSchema,
      },
      ...options,
    },
    async (request, reply) => store(request, reply, request.params.studyInstanceUid),
  );
};
