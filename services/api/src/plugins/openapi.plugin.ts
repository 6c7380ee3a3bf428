import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** OpenAPI document at `/docs/json` and interactive docs at `/docs`, generated from the route schemas. */
export const openapiPlugin = fp(async (app: FastifyInstance) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'btd API',
        description: 'Brain tumour detection on MRI slices: submit studies, poll results, receive signed webhooks.',
        version: '1.0.0',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'API key' } } },
      tags: [
        { name: 'studies', description: 'Submit images and read results' },
        { name: 'batches', description: 'Many studies, submitted in chunks' },
        { name: 'dicomweb', description: 'DICOMweb STOW-RS: DICOM instances pushed by a PACS or router' },
        { name: 'webhooks', description: 'The secret that signs your webhooks' },
        { name: 'models', description: 'The model registry: versions, their evidence and status, promotion history; promotion and rollback (admin)' },
        { name: 'trainings', description: 'Start a training (admin) and follow it to its published, possibly promoted, version' },
        { name: 'operations', description: 'Health, readiness and metrics' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
});
