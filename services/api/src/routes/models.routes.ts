import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import { initBackend, loadModel } from '@btd/model';
import {
  ArtifactIntegrityError,
  ArtifactVerificationError,
  contentTypeOf,
  DIGEST_FILE,
  MODEL_TASKS,
  ModelRegistry,
  ModelRuntimeUnavailableError,
  NoRollbackTargetError,
  PromotionConflictError,
  PromotionLockLostError,
  PromotionLockTimeoutError,
  VersionNotFoundError,
  verifyArtifact,
  type ArtifactCheck,
  type VersionSummary,
} from '@btd/shared';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors/api-error.js';
import { clientOf, requireAdmin } from '../plugins/auth.plugin.js';
import { bearerAuth, commonErrors, jsonBodyErrors } from '../schemas/common.schemas.js';
import {
  PromoteBodySchema,
  PromotionSchema,
  RollbackBodySchema,
  TaskOverviewSchema,
  TaskParamsSchema,
  VersionDetailSchema,
  VersionFileParamsSchema,
  VersionParamsSchema,
  VersionListSchema,
} from '../schemas/models.schemas.js';
import { withoutPerImageLists } from '../models/listed-metrics.js';

const versionPath = (task: string, version: string) => `/v1/models/${task}/versions/${version}`;

/** Registry errors as answers a client can act on; anything else passes through to the error handler. */
function toApiError(error: unknown): unknown {
  if (error instanceof VersionNotFoundError) return new ApiError(404, 'not_found', error.message);
  if (error instanceof ArtifactVerificationError) return new ApiError(422, 'model_refused', error.message);
  if (error instanceof ArtifactIntegrityError) return new ApiError(422, 'model_corrupt', error.message);
  if (error instanceof PromotionConflictError) return new ApiError(409, 'promotion_conflict', error.message);
  if (error instanceof PromotionLockTimeoutError || error instanceof PromotionLockLostError) return new ApiError(409, 'promotion_in_progress', error.message);
  if (error instanceof NoRollbackTargetError) return new ApiError(409, 'no_rollback_target', error.message);
  if (error instanceof ModelRuntimeUnavailableError) {
    return new ApiError(503, 'model_runtime_unavailable', 'the API cannot load models to check this version now; the version is not refused, retry later');
  }
  return error;
}

const rethrow = (error: unknown): never => {
  throw toApiError(error);
};

/** {@link rethrow} for a promotion or rollback, logging first why this process could not check the version (its client is only told that it could not). */
const rethrowChecked = (log: FastifyBaseLogger) => (error: unknown): never => {
  if (error instanceof ModelRuntimeUnavailableError) log.error({ err: error }, 'could not check a model version');
  return rethrow(error);
};

/** A manual promotion or rollback only goes ahead once the artifact has loaded and passed its probe here. */
const loadsAndProbes: ArtifactCheck = async (artifact) => {
  // A backend that cannot start is this process's fault, not the artifact's: the version is not refused.
  await initBackend().catch((error: unknown) => {
    throw new ModelRuntimeUnavailableError(`the model backend cannot start: ${(error as Error).message}`, { cause: error });
  });
  const model = await verifyArtifact(artifact.files, { task: artifact.task, version: artifact.version, load: loadModel });
  model.dispose();
};

/** A version as listed: its recorded metrics without their per-image lists, which its own view keeps. */
function summary(v: VersionSummary, perImage: 'with per-image lists' | 'without' = 'without') {
  const { manifest } = v;
  const evaluation = manifest?.evaluation;
  const metrics = manifest?.metrics && perImage === 'without' ? withoutPerImageLists(manifest.metrics) : manifest?.metrics;
  return {
    version: v.version,
    contentHash: v.contentHash,
    state: v.state,
    promoted: v.promoted,
    reasons: v.reasons,
    // A corrupt version has no manifest to name it.
    name: manifest?.name ?? null,
    createdAt: manifest?.createdAt ?? null,
    ...(metrics === undefined ? {} : { metrics }),
    ...(evaluation === undefined ? {} : { evaluation }),
    links: { self: versionPath(v.task, v.version) },
  };
}

async function detail(registry: ModelRegistry, task: string, version: string) {
  const described = await registry.describe(task, version).catch(rethrow);
  const [refusals, digest] = await Promise.all([registry.refusals(task, version), registry.digest(task, version)]);
  const files = Object.entries(digest?.files ?? {}).map(([name, file]) => ({
    name,
    bytes: file.bytes,
    url: `${versionPath(task, version)}/files/${name}`,
  }));
  const report = files.find((f) => f.name === 'report.md');
  const curves = files.filter((f) => f.name.endsWith('.svg')).map((f) => f.url);
  return {
    ...summary(described, 'with per-image lists'),
    task,
    manifest: described.manifest,
    ...(described.source === undefined ? {} : { source: described.source }),
    refusals,
    files,
    links: { self: versionPath(task, version), ...(report ? { report: report.url } : {}), curves },
  };
}

/** What a route that reads a version's files may also answer: 422 `model_corrupt` when one is gone from the store or changed. */
const versionErrors = { ...commonErrors, 422: Type.Ref('Error') };
const adminErrors = { ...versionErrors, ...jsonBodyErrors, 403: Type.Ref('Error'), 409: Type.Ref('Error') };
const TaskListSchema = Type.Object({ tasks: Type.Array(TaskOverviewSchema) });
const tags = ['models'];

/** `/v1/models`: the model registry. Reading needs any key; promotion and rollback an admin key. */
export const modelsRoutes: FastifyPluginAsyncTypebox<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const registry = new ModelRegistry({ store: ctx.objectStore, redis: ctx.redis, namespace: ctx.config.queuePrefix });

  app.get(
    '/v1/models',
    { schema: { tags, summary: 'Tasks with their promoted version', security: bearerAuth, response: { 200: TaskListSchema, ...commonErrors } } },
    async () => {
      const tasks = await Promise.all(
        MODEL_TASKS.map(async (task) => ({
          task,
          promoted: await registry.promoted(task),
          versions: (await registry.listVersionIds(task)).length,
          links: { versions: `/v1/models/${task}/versions`, promotions: `/v1/models/${task}/promotions` },
        })),
      );
      return { tasks };
    },
  );

  app.get(
    '/v1/models/:task/versions',
    {
      schema: {
        tags,
        summary: 'Versions of a task with their metrics and status, newest first',
        security: bearerAuth,
        params: TaskParamsSchema,
        response: { 200: VersionListSchema, ...commonErrors },
      },
    },
    async (request) => {
      const { task } = request.params;
      const versions = await registry.listVersions(task);
      return { task, promoted: versions.find((v) => v.promoted)?.version ?? null, versions: versions.map((v) => summary(v)) };
    },
  );

  app.get(
    '/v1/models/:task/versions/:version',
    {
      schema: {
        tags,
        summary: 'Manifest, status, refusals, report and curves of a version',
        security: bearerAuth,
        params: VersionParamsSchema,
        response: { 200: VersionDetailSchema, ...versionErrors },
      },
    },
    async (request) => detail(registry, request.params.task, request.params.version),
  );

  app.get(
    '/v1/models/:task/versions/:version/files/:name',
    {
      schema: {
        tags,
        summary: 'One file of a version (report.md, *.svg, history.json, ...)',
        security: bearerAuth,
        params: VersionFileParamsSchema,
        response: { 200: { type: 'string', format: 'binary' }, ...versionErrors },
      },
    },
    async (request, reply) => {
      const { task, version, name } = request.params;
      if (name === DIGEST_FILE) throw new ApiError(404, 'not_found', `no file ${name} in ${task}/${version}`);
      const bytes = await registry.readFile(task, version, name).catch(rethrow);
      // Versions are immutable, so their files may be cached for good.
      return reply.type(contentTypeOf(name)).header('cache-control', 'private, max-age=31536000, immutable').send(bytes);
    },
  );

  app.get(
    '/v1/models/:task/promotions',
    {
      schema: {
        tags,
        summary: 'Promotion history of a task (who, what, when, why), newest first',
        security: bearerAuth,
        params: TaskParamsSchema,
        response: { 200: Type.Object({ promotions: Type.Array(PromotionSchema) }), ...commonErrors },
      },
    },
    async (request) => ({ promotions: await registry.history(request.params.task) }),
  );

  app.post(
    '/v1/models/:task/promote',
    {
      schema: {
        tags,
        summary: 'Promote a version (admin); it must load and pass its probe first',
        security: bearerAuth,
        params: TaskParamsSchema,
        body: PromoteBodySchema,
        response: { 200: PromotionSchema, ...adminErrors },
      },
      preHandler: requireAdmin,
    },
    async (request) => {
      const { version, reason, expectedCurrent } = request.body;
      const options = { by: clientOf(request).id, reason, check: loadsAndProbes, ...(expectedCurrent ? { expectedCurrent } : {}) };
      return registry.promote(request.params.task, version, options).catch(rethrowChecked(request.log));
    },
  );

  app.post(
    '/v1/models/:task/rollback',
    {
      schema: {
        tags,
        summary: 'Roll back to the previous (or a named) version (admin); never to one that fails to load',
        security: bearerAuth,
        params: TaskParamsSchema,
        body: RollbackBodySchema,
        response: { 200: PromotionSchema, ...adminErrors },
      },
      preHandler: requireAdmin,
    },
    async (request) => {
      const { reason, to } = request.body;
      const options = { by: clientOf(request).id, reason, check: loadsAndProbes, ...(to ? { to } : {}) };
      return registry.rollback(request.params.task, options).catch(rethrowChecked(request.log));
    },
  );
};
