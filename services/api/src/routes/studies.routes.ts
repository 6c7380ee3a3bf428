import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { ObjectNotFoundError } from '@btd/shared';
import type { ApiContext } from '../context.js';
import { overlayCapture } from '../dicom-results/overlay-capture.js';
import { notFound } from '../errors/api-error.js';
import { readStudyForm, type StudyFormLimits } from '../intake/read-study-form.js';
import { clientOf } from '../plugins/auth.plugin.js';
import type { ImageRecord, StudyRecord } from '../store/records.js';
import { bearerAuth, commonErrors } from '../schemas/common.schemas.js';
import {
  ImageParamsSchema,
  StudyListQuerySchema,
  StudyListSchema,
  StudyErasedSchema,
  StudyParamsSchema,
  StudyViewSchema,
  studyUploadSchema,
} from '../schemas/study.schemas.js';
import { eraseStudy } from '../studies/erase-study.js';
import { ownedStudy, readStudyView } from '../studies/study-reader.js';
import { studyPath } from '../studies/study-view.js';
import { submitStudy } from '../studies/submit-study.js';
import { intakeChecksOf, multipartValidator, requireRedis, sendStored, withUploadMemory } from './route-helpers.js';

/** Upload limits from the configuration. */
export function formLimits(ctx: ApiContext): StudyFormLimits {
  const { maxUploadBytes, maxImagePixels, maxImagesPerStudy, maxSubmissionBytes } = ctx.config;
  return {
    maxBytes: maxUploadBytes,
    maxPixels: maxImagePixels,
    maxImages: maxImagesPerStudy,
    maxFiles: maxImagesPerStudy,
    maxTotalBytes: maxSubmissionBytes,
    callbacks: ctx.callbackUrls,
  };
}

/** `/v1/studies`: submit, read, list, and the overlay image. */
export const studiesRoutes: FastifyPluginAsyncTypebox<{ ctx: ApiContext }> = async (app, { ctx }) => {
  /** Runs `read` on an analysed image of the caller's study; 404 while it has no overlay, or if its objects are gone. */
  const withOverlay = async <T>(request: FastifyRequest, params: { id: string; imageId: string }, read: (study: StudyRecord, image: ImageRecord) => Promise<T>) => {
    const { id, imageId } = params;
    const study = await ownedStudy(ctx, clientOf(request), id);
    const image = study.imageIds.includes(imageId) ? await ctx.studies.image(imageId) : undefined;
    if (!image?.overlayKey) throw notFound('overlay of image', imageId);
    return read(study, image).catch((error: unknown) => {
      throw error instanceof ObjectNotFoundError ? notFound('overlay of image', imageId) : error;
    });
  };

  app.post(
    '/v1/studies',
    {
      schema: {
        tags: ['studies'],
        summary: 'Submit a study of one or more images',
        description: 'Every file is checked (type by content, size, pixel count, complete data) before anything is stored.',
        security: bearerAuth,
        ...studyUploadSchema,
      },
      validatorCompiler: multipartValidator,
      preHandler: requireRedis(ctx),
    },
    async (request, reply) => {
      const client = clientOf(request);
      return withUploadMemory(ctx, request, async (held) => {
        const form = await readStudyForm(request, formLimits(ctx), intakeChecksOf(ctx, reply), held);
        const target = { clientId: client.id, idempotencyKey: request.headers['idempotency-key'] };
        return sendStored(reply, await submitStudy(ctx, form, target, request.log));
      });
    },
  );

  app.get(
    '/v1/studies/:id',
    {
      schema: {
        tags: ['studies'],
        summary: 'State and results of a study',
        security: bearerAuth,
        params: StudyParamsSchema,
        response: { 200: StudyViewSchema, ...commonErrors },
      },
    },
    async (request) => readStudyView(ctx, await ownedStudy(ctx, clientOf(request), request.params.id)),
  );

  app.delete(
    '/v1/studies/:id',
    {
      schema: {
        tags: ['studies'],
        summary: 'Erase a study: its originals, results and overlays, and every record of it',
        description:
          'For the client that submitted it, or an admin client. A study is erased (204), finished or not: its objects in S3 first, then its records, ' +
          'its externalId and Idempotency-Key mappings and its webhook deliveries; afterwards it answers 404, as one that never existed. ' +
          'One still queued or processing loses its waiting jobs, and what a worker still analysing one of its images produces is discarded. ' +
          'Should S3 fail, nothing is erased from the records (503): erase it again. ' +
          'A study in a batch leaves its listing; the batch keeps its counts if the study had finished, else it no longer counts it.',
        security: bearerAuth,
        params: StudyParamsSchema,
        response: { 204: StudyErasedSchema, ...commonErrors },
      },
      preHandler: requireRedis(ctx),
    },
    async (request, reply) => {
      const client = clientOf(request);
      const { id } = request.params;
      const study = client.admin ? await ctx.studies.get(id) : await ownedStudy(ctx, client, id);
      if (!study || !(await eraseStudy(ctx, study, 'request', request.log))) throw notFound('study', id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/studies',
    {
      schema: {
        tags: ['studies'],
        summary: 'Your studies, newest first, or the one with an external id',
        security: bearerAuth,
        querystring: StudyListQuerySchema,
        response: { 200: StudyListSchema, ...commonErrors },
      },
    },
    async (request) => {
      const client = clientOf(request);
      // The TypeBox validator checks but does not fill in defaults.
      const { externalId, limit = 50, offset = 0 } = request.query;
      const found = externalId
        ? await ctx.externalIds.lookup(client.id, externalId).then((id) => ({ ids: id ? [id] : [], total: id ? 1 : 0 }))
        : await ctx.studies.listForClient(client.id, offset, limit);
      const studies = (await ctx.studies.getMany(found.ids)).filter((study) => study !== undefined);
      const items = studies.map((study) => ({
        studyId: study.id,
        ...(study.externalId ? { externalId: study.externalId } : {}),
        ...(study.batchId ? { batchId: study.batchId } : {}),
        state: study.state,
        createdAt: study.createdAt,
        links: { self: studyPath(study.id) },
      }));
      const more = !externalId && offset + limit < found.total;
      // An external id claimed by a submission still storing its study names no study yet.
      const total = externalId ? items.length : found.total;
      return { items, total, ...(more ? { next: `limit=${limit}&offset=${offset + limit}` } : {}) };
    },
  );

  app.get(
    '/v1/studies/:id/images/:imageId/overlay.png',
    {
      schema: {
        tags: ['studies'],
        summary: 'Heatmap overlay of an analysed image (PNG)',
        security: bearerAuth,
        params: ImageParamsSchema,
        produces: ['image/png'],
        response: { 200: { type: 'string', format: 'binary', description: 'PNG image' }, ...commonErrors },
      },
    },
    async (request, reply) => {
      const png = await withOverlay(request, request.params, async (_, image) => ctx.objectStore.get(image.overlayKey!));
      return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
    },
  );

  app.get(
    '/v1/studies/:id/images/:imageId/overlay.dcm',
    {
      schema: {
        tags: ['studies'],
        summary: 'Heatmap overlay of an analysed image as a DICOM Secondary Capture',
        description:
          'For a PACS to file beside the slice: same patient and study as a DICOM original (a study UID derived from the btd study otherwise), ' +
          'a btd series, Source Image Sequence pointing at the slice, and the result in Image Comments. The same image always gives the same SOP Instance UID.',
        security: bearerAuth,
        params: ImageParamsSchema,
        produces: ['application/dicom'],
        response: { 200: { type: 'string', format: 'binary', description: 'DICOM Part 10 file' }, ...commonErrors },
      },
    },
    async (request, reply) => {
      const capture = await withOverlay(request, request.params, async (study, image) => overlayCapture(ctx, study, image));
      const filename = `${request.params.imageId}-overlay.dcm`;
      return reply.type('application/dicom').header('content-disposition', `attachment; filename="${filename}"`).send(capture);
    },
  );
};
