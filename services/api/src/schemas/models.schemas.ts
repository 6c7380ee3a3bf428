import { Type } from '@fastify/type-provider-typebox';
import { VERSION_ID_PATTERN } from '@btd/shared';

export const TaskSchema = Type.Union([Type.Literal('tumor-binary'), Type.Literal('tumor-type')], { description: 'Model task.' });

export const TaskParamsSchema = Type.Object({ task: TaskSchema });

export const VersionParamsSchema = Type.Object({
  task: TaskSchema,
  version: Type.String({ pattern: VERSION_ID_PATTERN.source, description: 'Registry version, e.g. 20260301T101500Z-1a2b3c4d.' }),
});

export const VersionFileParamsSchema = Type.Object({
  ...VersionParamsSchema.properties,
  name: Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$', description: 'File of the artifact, e.g. report.md.' }),
});

export const PromotionSchema = Type.Object({
  task: Type.String(),
  version: Type.String(),
  contentHash: Type.String(),
  action: Type.String({ description: 'promote, rollback or seed' }),
  by: Type.String({ description: 'Who promoted.' }),
  reason: Type.String(),
  at: Type.String({ format: 'date-time' }),
  previousVersion: Type.Union([Type.String(), Type.Null()]),
  sequence: Type.Integer(),
});

export const VersionSummarySchema = Type.Object({
  version: Type.String(),
  contentHash: Type.String({ description: 'sha256 over the artifact files.' }),
  state: Type.String({ description: 'candidate, promoted, retired or refused.' }),
  promoted: Type.Boolean(),
  reasons: Type.Array(Type.String(), { description: 'Why it is in this state (gate refusals, verification failures).' }),
  name: Type.String(),
  createdAt: Type.String(),
  metrics: Type.Optional(
    Type.Unknown({
      description:
        "Evaluations recorded in the manifest (training's test split, later ones by name); in a listing without their per-image lists (`misclassified`, `rejected`), which the version's own view keeps.",
    }),
  ),
  evaluation: Type.Optional(Type.Unknown({ description: 'Promotion gate evidence: evaluation set, candidate and baseline metrics.' })),
  links: Type.Object({ self: Type.String() }),
});

/** A listed version: one whose manifest.json is gone from the store or changed is listed as corrupt, with nothing from its manifest. */
export const ListedVersionSchema = Type.Object({
  ...VersionSummarySchema.properties,
  state: Type.String({ description: 'candidate, promoted, retired, refused, or corrupt: its manifest.json is gone from the store or changed (the first reason says which).' }),
  name: Type.Union([Type.String(), Type.Null()], { description: 'From the manifest; null for a corrupt version.' }),
  createdAt: Type.Union([Type.String(), Type.Null()], { description: 'From the manifest; null for a corrupt version.' }),
});
export const VersionListSchema = Type.Object({
  task: Type.String(),
  promoted: Type.Union([Type.String(), Type.Null()]),
  versions: Type.Array(ListedVersionSchema),
});
export const TaskOverviewSchema = Type.Object({
  task: Type.String(),
  promoted: Type.Union([PromotionSchema, Type.Null()]),
  versions: Type.Integer({ description: 'Published versions.' }),
  links: Type.Object({ versions: Type.String(), promotions: Type.String() }),
});

export const VersionDetailSchema = Type.Object({
  ...VersionSummarySchema.properties,
  task: Type.String(),
  manifest: Type.Unknown({ description: 'The full manifest.json.' }),
  source: Type.Optional(Type.Unknown({ description: 'Where the version came from (training job, seed).' })),
  refusals: Type.Array(Type.Object({ by: Type.String(), reason: Type.String(), at: Type.String() })),
  files: Type.Array(Type.Object({ name: Type.String(), bytes: Type.Integer(), url: Type.String() })),
  links: Type.Object({
    self: Type.String(),
    report: Type.Optional(Type.String({ description: 'Evaluation report (Markdown).' })),
    curves: Type.Array(Type.String(), { description: 'Training curves and plots (SVG).' }),
  }),
});

export const PromoteBodySchema = Type.Object(
  {
    version: VersionParamsSchema.properties.version,
    reason: Type.String({ minLength: 1, maxLength: 500, description: 'Why, recorded in the promotion history.' }),
    expectedCurrent: Type.Optional(
      Type.String({ pattern: VERSION_ID_PATTERN.source, description: 'Fail with 409 unless this version is the promoted one.' }),
    ),
  },
  { additionalProperties: false },
);

export const RollbackBodySchema = Type.Object(
  {
    reason: Type.String({ minLength: 1, maxLength: 500 }),
    to: Type.Optional(Type.String({ pattern: VERSION_ID_PATTERN.source, description: 'Default: the previous promotion.' })),
  },
  { additionalProperties: false },
);
