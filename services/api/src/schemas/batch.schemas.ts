import { Type, type Static } from '@fastify/type-provider-typebox';
import { CallbackUrlSchema, ExternalIdSchema, IdPattern, PrioritySchema } from './common.schemas.js';
import { StudyStateSchema, WebhookViewSchema } from './study.schemas.js';

export const CreateBatchSchema = Type.Object(
  {
    externalId: Type.Optional(ExternalIdSchema),
    priority: Type.Optional(PrioritySchema),
    callbackUrl: Type.Optional(CallbackUrlSchema),
  },
  { additionalProperties: false },
);
export type CreateBatch = Static<typeof CreateBatchSchema>;

export const BatchViewSchema = Type.Object(
  {
    batchId: Type.String(),
    externalId: Type.Optional(Type.String()),
    priority: PrioritySchema,
    state: Type.Enum(['open', 'closed', 'done'], { description: 'open: takes studies; closed: no more studies; done: all finished.' }),
    createdAt: Type.String(),
    closedAt: Type.Optional(Type.String()),
    completedAt: Type.Optional(Type.String()),
    counts: Type.Object({
      total: Type.Integer(),
      queued: Type.Integer(),
      processing: Type.Integer(),
      done: Type.Integer(),
      failed: Type.Integer(),
    }),
    studies: Type.Object({
      items: Type.Array(
        Type.Object({
          studyId: Type.String(),
          externalId: Type.Optional(Type.String()),
          state: StudyStateSchema,
          failure: Type.Optional(Type.Object({ reason: Type.String() })),
          links: Type.Object({ self: Type.String() }),
        }),
      ),
      next: Type.Optional(Type.String({ description: 'Query string of the next page of studies.' })),
    }),
    webhook: Type.Optional(WebhookViewSchema),
    links: Type.Object({ self: Type.String(), studies: Type.String(), close: Type.String() }),
  },
);
export type BatchView = Static<typeof BatchViewSchema>;

export const BatchParamsSchema = Type.Object({ id: Type.String({ pattern: IdPattern }) });

export const BatchPageQuerySchema = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100, description: 'Studies per page.' })),
    after: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Position of the last study already seen (from `next`).' })),
  },
  { additionalProperties: false },
);
