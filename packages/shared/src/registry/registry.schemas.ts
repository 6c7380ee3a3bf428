import { Type, type Static } from '@sinclair/typebox';

/** What a promotion did: a manual or gated promotion, a rollback, or the first publication of bundled models. */
export const PromotionActionSchema = Type.Union([Type.Literal('promote'), Type.Literal('rollback'), Type.Literal('seed')]);
export type PromotionAction = Static<typeof PromotionActionSchema>;

/** One entry of a task's append-only promotion history; the pointer holds a copy of the latest. */
export const PromotionRecordSchema = Type.Object({
  task: Type.String(),
  version: Type.String(),
  contentHash: Type.String(),
  action: PromotionActionSchema,
  /** Who promoted: an API client id, `trainer`, `seed`, ... */
  by: Type.String(),
  reason: Type.String(),
  at: Type.String({ format: 'date-time' }),
  previousVersion: Type.Union([Type.String(), Type.Null()]),
  /** Increases by one with every promotion of the task; lets readers spot a stale pointer. */
  sequence: Type.Integer({ minimum: 1 }),
});
export type PromotionRecord = Static<typeof PromotionRecordSchema>;

/** Lifecycle of a published version. `promoted` is derived from the pointer, not stored. */
export const VersionStateSchema = Type.Union([
  Type.Literal('candidate'),
  Type.Literal('promoted'),
  Type.Literal('retired'),
  Type.Literal('refused'),
]);
export type VersionState = Static<typeof VersionStateSchema>;

/** Mutable status of a version, kept beside it because the version itself is immutable. */
export const VersionStatusSchema = Type.Object({
  state: VersionStateSchema,
  /** Why the version is in this state: gate refusals, verification failures. */
  reasons: Type.Array(Type.String()),
  updatedAt: Type.String({ format: 'date-time' }),
  /** Where the version came from, e.g. `{ kind: 'training', jobId: '42' }`. */
  source: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  /** The promotion gate's evidence (candidate and baseline metrics) when one ran. */
  gate: Type.Optional(Type.Unknown()),
});
export type VersionStatus = Static<typeof VersionStatusSchema>;

/** A worker's report that it refused to serve a version. */
export const RefusalReportSchema = Type.Object({
  by: Type.String(),
  reason: Type.String(),
  at: Type.String({ format: 'date-time' }),
});
export type RefusalReport = Static<typeof RefusalReportSchema>;

/** Published on the promotion channel after the pointer has been written. */
export const PromotionNoticeSchema = Type.Object({
  task: Type.String(),
  version: Type.String(),
  contentHash: Type.String(),
  sequence: Type.Integer(),
  action: PromotionActionSchema,
});
export type PromotionNotice = Static<typeof PromotionNoticeSchema>;
