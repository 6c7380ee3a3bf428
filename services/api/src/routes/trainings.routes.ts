import { createHash, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@fastify/type-provider-typebox';
import stableStringify from 'safe-stable-stringify';
import { checkTrainOptions, InvalidOptionsError } from '@btd/model';
import {
  cancelledReason,
  enqueueTraining,
  readTrainingCancellation,
  recordRemovedTraining,
  requestTrainingCancellation,
  type Redis,
  type TrainingCancellation,
  TrainingRequestSchema,
  TrainingProgressSchema,
  TrainingResultSchema,
  type TrainingJob,
  type TrainingJobHandle,
  type TrainingQueue,
  type TrainingProgress,
} from '@btd/shared';
import type { ApiContext } from '../context.js';
import { ApiError, notFound } from '../errors/api-error.js';
import { idempotencyKeyReused } from '../store/idempotency-store.js';
import { clientOf, requireAdmin } from '../plugins/auth.plugin.js';
import { bearerAuth, commonErrors, IdempotencyHeadersSchema, jsonBodyErrors } from '../schemas/common.schemas.js';
import { assertDatasetFolderAvailable } from '../trainings/dataset-availability.js';
import { trainingsPage } from '../trainings/trainings-page.js';
import { requireRedis, sendStored } from './route-helpers.js';

const TrainingViewSchema = Type.Object({
  id: Type.String(),
  state: Type.String({
    description:
      'waiting, active, delayed (handed back: resumes, or waits for a trainer that can read its dataset folder), completed or failed; cancelling (asked to be cancelled, its trainer stops it at the end of the batch under way or before its next phase) or cancelled (taken off the queue, or stopped by its trainer, nothing published).',
  }),
  request: Type.Unknown({ description: 'Task, dataset, hyper-parameters and who asked.' }),
  progress: Type.Union([TrainingProgressSchema, Type.Null()], {
    description: 'Phase and the last finished epoch; while handed back for a trainer that can read its dataset folder, datasetWait (which trainers could not and why, which it waits for).',
  }),
  result: Type.Optional(TrainingResultSchema),
  failedReason: Type.Optional(Type.String()),
  attempts: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  cancelledBy: Type.Optional(Type.String({ description: 'The client that asked for the cancellation, once one was asked for.' })),
  cancelledAt: Type.Optional(Type.String({ format: 'date-time' })),
  links: Type.Object({ self: Type.String() }),
});

const TrainingIdSchema = Type.String({ pattern: '^training-[A-Za-z0-9_.-]{1,100}$' });

// Unknown parameters are refused, as on the other lists: a misspelt `?limt=` must not answer the default page as if understood.
const TrainingsPageQuerySchema = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50, description: 'Trainings per page.' })),
    after: Type.Optional({ ...TrainingIdSchema, description: 'The last training already seen (from `next`): the page lists those created before it.' }),
  },
  { additionalProperties: false },
);

const SubmittedTrainingSchema = Type.Object({ id: Type.String(), state: Type.String(), links: Type.Object({ self: Type.String() }) });

const trainingPath = (id: string) => `/v1/trainings/${id}`;
function view(job: TrainingJobHandle, state: string) {
  // A job's progress is whatever the trainer reported: a TrainingProgress object once it started.
  const progress = typeof job.progress === 'object' && job.progress !== null ? (job.progress as TrainingProgress) : null;
  return {
    id: job.id!,
    state,
    request: job.data,
    progress,
    ...(job.returnvalue ? { result: job.returnvalue } : {}),
    ...(job.failedReason ? { failedReason: job.failedReason } : {}),
    attempts: job.attemptsMade,
    createdAt: new Date(job.timestamp).toISOString(),
    ...(job.processedOn ? { startedAt: new Date(job.processedOn).toISOString() } : {}),
    ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
    links: { self: trainingPath(job.id!) },
  };
}

/** The state a training shows: a cancelled one shows as such, not as a failure or as still queued or running. */
function stateOf(state: string, job: TrainingJobHandle, cancellation: TrainingCancellation | undefined): string {
  if (!cancellation) return state;
  if (state === 'failed') return job.failedReason === cancelledReason(cancellation) ? 'cancelled' : state;
  return state === 'completed' ? state : 'cancelling';
}

const cancellationFields = (cancellation: TrainingCancellation) => ({ cancelledBy: cancellation.by, cancelledAt: new Date(cancellation.at).toISOString() });

/** Reads trainings and their cancellations. */
interface TrainingReader {
  queue: TrainingQueue;
  redis: Redis;
  prefix: string;
}

/**
 * A training as it stands. Its state is read before the job: BullMQ stores a job's result or failure
 * in the same step that moves it to completed or failed, so a job read after its state holds them
 * whenever that state says it ended. Read the other way round, a job that ends between the two
 * reads would show as completed without its result.
 */
async function readTraining({ queue, redis, prefix }: TrainingReader, id: string) {
  const state = await queue.getJobState(id);
  const job: TrainingJobHandle | undefined = state === 'unknown' ? undefined : await queue.getJob(id);
  const cancellation = await readTrainingCancellation(redis, prefix, id);
  // Taken off the queue before a trainer ran it: the training as it stood then.
  if (!job) return cancellation?.removed as ReturnType<typeof view> | undefined;
  return { ...view(job, stateOf(state, job, cancellation)), ...(cancellation ? cancellationFields(cancellation) : {}) };
}

/** States of a training that no trainer runs yet (or again): cancelled at once, by taking it off the queue. */
const QUEUED_STATES = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

/**
 * Refuses to cancel a training handed back while publishing (an S3 outage deferred it): publishing
 * is finished once begun, and taking it off the queue would leave what it published half-way, a
 * candidate of a training shown cancelled.
 */
function refuseIfPublishing(id: string, job: TrainingJobHandle | undefined, state: string | undefined): void {
  const { progress } = job ?? {};
  const phase = typeof progress === 'object' && progress !== null && 'phase' in progress ? progress.phase : undefined;
  if (phase === 'publishing' && state !== undefined && QUEUED_STATES.has(state)) {
    throw new ApiError(409, 'training_publishing', `training ${id} has begun publishing its model, which is finished once begun (it waits for S3 to answer); it can no longer be cancelled`);
  }
}

const tags = ['trainings'];

/** `/v1/trainings`: start a training (admin) and follow its progress. */
export const trainingsRoutes: FastifyPluginAsyncTypebox<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const queue = ctx.queues.training;
  const reader: TrainingReader = { queue, redis: ctx.redis, prefix: ctx.config.queuePrefix };

  app.post(
    '/v1/trainings',
    {
      schema: {
        tags,
        summary: 'Start a training (admin); the candidate is published and promoted only if it passes the gate',
        security: bearerAuth,
        headers: IdempotencyHeadersSchema,
        body: TrainingRequestSchema,
        response: { 202: SubmittedTrainingSchema, ...commonErrors, ...jsonBodyErrors, 403: Type.Ref('Error'), 409: Type.Ref('Error'), 422: Type.Ref('Error') },
      },
      preHandler: [requireAdmin, requireRedis(ctx)],
    },
    async (request, reply) => {
      const client = clientOf(request);
      const { dataset, hyperParameters = {} } = request.body;
      // Cross-field rules the schema cannot state: the trainer's own check, so it never meets a request it refuses.
      try {
        checkTrainOptions(hyperParameters);
      } catch (error) {
        if (error instanceof InvalidOptionsError) throw new ApiError(400, 'invalid_request', `body/hyperParameters: ${error.message}`);
        throw error;
      }
      if (dataset.kind === 's3') {
        // Folder markers alone (`datasets/new/`) are no dataset: the trainer's mirror skips them.
        if (!(await ctx.objectStore.hasFilesUnder(dataset.prefix))) throw new ApiError(422, 'dataset_empty', `no files under ${dataset.prefix} in the bucket (folder markers do not count)`);
      }
      const key = request.headers['idempotency-key'];
      const payload: TrainingJob = { ...request.body, requestedBy: client.id };
      // Keys sorted: the same request with its fields in another order is the same request.
      const fingerprint = createHash('sha256').update(stableStringify(['training', request.body]) ?? '').digest('hex');
      const response = await ctx.idempotency.run(
        client.id,
        key,
        fingerprint,
        async () => {
          // Inside the claim: a retry of a training accepted before is answered as it was, whatever trainers run now.
          if (dataset.kind === 'local') await assertDatasetFolderAvailable(ctx.redis, ctx.config.queuePrefix, dataset.path);
          // The same key from the same client names the same training; without one, every call is new.
          const requestId = key ? createHash('sha256').update(`${client.id}\n${key}`).digest('hex').slice(0, 32) : randomUUID();
          const job = await enqueueTraining(queue, requestId, payload);
          // A training outlives the memory of its key (kept for IDEMPOTENCY_TTL_SECONDS): the queue,
          // which returns the job already there under this id, tells a retry from another request.
          const existing = key ? await queue.getJob(job.id!) : undefined;
          if (existing && !isDeepStrictEqual(existing.data, payload)) throw idempotencyKeyReused();
          const self = trainingPath(job.id!);
          const body = { id: job.id!, state: await job.getState(), links: { self } };
          return { statusCode: 202, location: self, body, ...(existing && existing.timestamp !== job.timestamp ? { replayed: true } : {}) };
        },
        { log: request.log },
      );
      if (!response.replayed) return sendStored(reply, response);
      // A replay answers with the training as it stands now, not as it was when first submitted.
      const first = response.body as Static<typeof SubmittedTrainingSchema>;
      const state = await queue.getJobState(first.id);
      return sendStored(reply, { ...response, body: { ...first, state: state === 'unknown' ? first.state : state } });
    },
  );

  app.get(
    '/v1/trainings/:id',
    {
      schema: {
        tags,
        summary: 'State and progress of a training: epoch, loss, accuracy, then the published version',
        security: bearerAuth,
        params: Type.Object({ id: TrainingIdSchema }),
        response: { 200: TrainingViewSchema, ...commonErrors },
      },
    },
    async (request) => {
      const training = await readTraining(reader, request.params.id);
      if (!training) throw notFound('training', request.params.id);
      return training;
    },
  );

  app.delete(
    '/v1/trainings/:id',
    {
      schema: {
        tags,
        summary: 'Cancel a training (admin): a queued one is taken off the queue (200), a running one is stopped by its trainer, which publishes nothing (202, then cancelled)',
        security: bearerAuth,
        params: Type.Object({ id: TrainingIdSchema }),
        response: { 200: TrainingViewSchema, 202: TrainingViewSchema, ...commonErrors, 403: Type.Ref('Error'), 409: Type.Ref('Error') },
      },
      preHandler: [requireAdmin, requireRedis(ctx)],
    },
    async (request, reply) => {
      const { id } = request.params;
      const before = await readTraining(reader, id);
      if (!before) throw notFound('training', id);
      // Asked again: answered as the first time, with the training as it stands now.
      if (before.state === 'cancelled') return before;
      if (before.state === 'completed' || before.state === 'failed') {
        throw new ApiError(409, 'training_finished', `training ${id} is already ${before.state}; only a queued or running training can be cancelled`);
      }
      const queued = await queue.getJob(id);
      refuseIfPublishing(id, queued, await queued?.getState());
      const cancellation = await requestTrainingCancellation(ctx.redis, reader.prefix, id, clientOf(request).id);
      const job = await queue.getJob(id);
      if (job && QUEUED_STATES.has(await job.getState())) {
        // A job a trainer took meanwhile is locked and stays: its trainer finds the cancellation at its start.
        const removed = await job.remove().then(
          () => true,
          () => false,
        );
        if (removed) {
          const training = { ...view(job, 'cancelled'), finishedAt: new Date().toISOString(), ...cancellationFields(cancellation) };
          await recordRemovedTraining(ctx.redis, reader.prefix, id, cancellation, training);
          request.log.info({ jobId: id, cancelledBy: cancellation.by }, 'queued training cancelled');
          return training;
        }
      }
      const training = await readTraining(reader, id);
      if (!training) throw notFound('training', id);
      request.log.info({ jobId: id, cancelledBy: cancellation.by, state: training.state }, 'training cancellation asked for');
      if (training.state === 'cancelling') reply.code(202);
      return training;
    },
  );

  app.get(
    '/v1/trainings',
    {
      schema: {
        tags,
        summary: 'Trainings, newest first, page by page (`next` holds the query of the next page)',
        security: bearerAuth,
        querystring: TrainingsPageQuerySchema,
        response: {
          200: Type.Object({
            items: Type.Array(TrainingViewSchema),
            next: Type.Optional(Type.String({ description: 'Query string of the next page, while more follow.' })),
          }),
          ...commonErrors,
        },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      // The ids only: each training of the page is then read once, state first, as readTraining does.
      const page = await trainingsPage(queue, ctx.redis, reader.prefix, limit, request.query.after);
      const read = await Promise.all(page.ids.map((id) => readTraining(reader, id)));
      // A training removed between the listing and its read is left out.
      const items = read.filter((item) => item !== undefined);
      return { items, ...(page.last ? { next: `limit=${limit}&after=${page.last}` } : {}) };
    },
  );
};
