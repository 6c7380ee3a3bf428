import multipart from '@fastify/multipart';
import type { FastifyPluginAsync } from 'fastify';
import type { ApiContext } from './context.js';
import { authPlugin } from './plugins/auth.plugin.js';
import { contentTypePlugin } from './plugins/content-type.plugin.js';
import { errorHandlerPlugin } from './plugins/error-handler.plugin.js';
import { metricsPlugin } from './plugins/metrics.plugin.js';
import { openapiPlugin } from './plugins/openapi.plugin.js';
import { singleHeadersPlugin } from './plugins/single-headers.plugin.js';
import { adminRoutes } from './routes/admin.routes.js';
import { batchesRoutes } from './routes/batches.routes.js';
import { dicomwebRoutes } from './routes/dicomweb.routes.js';
import { modelsRoutes } from './routes/models.routes.js';
import { operationsRoutes } from './routes/operations.routes.js';
import { studiesRoutes } from './routes/studies.routes.js';
import { trainingsRoutes } from './routes/trainings.routes.js';
import { uploadPageRoutes } from './routes/upload-page.routes.js';
import { webhooksRoutes } from './routes/webhooks.routes.js';
import { ErrorSchema } from './schemas/common.schemas.js';

/**
 * A plugin adding routes for one resource. It receives the API context; routes under `/v1`
 * are authenticated by the auth hook, and `requireAdmin` guards admin-only ones.
 */
export type ApiRoutes = FastifyPluginAsync<{ ctx: ApiContext }>;

/** Options of {@link apiApp}. */
export interface ApiAppOptions {
  readonly ctx: ApiContext;
  /** Further resources (e.g. `/v1/models`, `/v1/trainings`), registered after the built-in ones. */
  readonly routes?: readonly ApiRoutes[];
}

/** The application: external plugins, then the app's own plugins, then the routes. */
export const apiApp: FastifyPluginAsync<ApiAppOptions> = async (app, { ctx, routes = [] }) => {
  app.addSchema(ErrorSchema);
  await app.register(openapiPlugin);
  // Limits are set per request in `request.parts()`, where the configured values are known.
  await app.register(multipart);
  await app.register(contentTypePlugin);
  await app.register(errorHandlerPlugin);
  await app.register(metricsPlugin, { metrics: ctx.metrics });
  await app.register(singleHeadersPlugin);
  await app.register(authPlugin, { keyRing: ctx.keyRing });

  await app.register(operationsRoutes, { ctx });
  await app.register(uploadPageRoutes);
  for (const resource of [studiesRoutes, batchesRoutes, dicomwebRoutes, webhooksRoutes, adminRoutes, modelsRoutes, trainingsRoutes, ...routes] as ApiRoutes[]) {
    await app.register(resource, { ctx });
  }
};
