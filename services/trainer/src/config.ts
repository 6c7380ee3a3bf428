import { Type, type Static } from '@sinclair/typebox';
import {
  S3_OUTAGE_DEFAULTS,
  loadConfig,
  logConfigFields,
  queueConfigFields,
  redisConfigFields,
  s3ConfigFields,
  timerMsField,
  type Env,
} from '@btd/shared';

/**
 * Everything the trainer reads from the environment. Each field names its variable (`env`),
 * says what it does and, where one makes sense, has a default. `.env.example` lists them all.
 */
export const TrainerConfigSchema = Type.Object({
  ...redisConfigFields,
  ...queueConfigFields,
  ...s3ConfigFields,
  ...logConfigFields,
  /** Trainings run at once; each one uses the CPU fully, so 1 unless the machine is large. */
  concurrency: Type.Integer({
    env: 'TRAINER_CONCURRENCY',
    default: 1,
    minimum: 1,
    maximum: 16,
    description: 'Trainings run at the same time.',
  }),
  /** Scratch space: per-job checkpoints and outputs, and the cache of datasets read from S3. */
  workDir: Type.String({
    env: 'TRAINER_WORK_DIR',
    default: 'data/trainer',
    minLength: 1,
    description: 'Directory for checkpoints, training outputs and the dataset cache.',
  }),
  /** Local folders a training request may name; anything outside them is refused. */
  datasetRoots: Type.String({
    env: 'TRAINER_DATASET_ROOTS',
    default: 'data/datasets,../shared/datasets',
    description: 'Comma-separated folders under which local datasets may be read.',
  }),
  /**
   * Trainers may have different roots and disks, and BullMQ hands a training to whichever is free:
   * one that cannot read the training's local folder hands it back while another running trainer
   * publishes roots that may hold it, and while none does, for this long; then it fails.
   */
  datasetWaitMs: timerMsField({
    env: 'TRAINER_DATASET_WAIT_MS',
    default: 120_000,
    minimum: 0,
    description: 'How long a training whose local dataset folder this trainer cannot read waits, handed back to the queue, while no running trainer publishes roots that may hold it, in milliseconds; then it fails naming the trainers that could not read it (0: fails at once).',
  }),
  /** Fixed evaluation set of the tumour-or-not task: a local folder or `s3://<prefix>/` in the bucket. */
  evalSetTumorBinary: Type.Optional(
    Type.String({
      env: 'EVAL_SET_TUMOR_BINARY',
      minLength: 1,
      description: 'Evaluation set of tumor-binary (folder with one sub-folder per class, or s3://prefix/). Unset: no automatic promotion.',
    }),
  ),
  /** Fixed evaluation set of the tumour-type task. */
  evalSetTumorType: Type.Optional(
    Type.String({
      env: 'EVAL_SET_TUMOR_TYPE',
      minLength: 1,
      description: 'Evaluation set of tumor-type (folder or s3://prefix/). Unset: no automatic promotion.',
    }),
  ),
  /** Caps the evaluation set so the gate stays quick; both models see the same images. */
  evalMaxImages: Type.Integer({
    env: 'EVAL_MAX_IMAGES',
    default: 400,
    minimum: 2,
    description: 'Images of the evaluation set used by the promotion gate.',
  }),
  /** How much accuracy or sensitivity a candidate may lose and still be promoted (0: none). */
  gateTolerance: Type.Number({
    env: 'GATE_TOLERANCE',
    default: 0,
    minimum: 0,
    maximum: 0.2,
    description: 'Allowed drop in accuracy or sensitivity for automatic promotion (0..0.2).',
  }),
  /** Bundled artifacts published to an empty registry at start, so the gate has a baseline. */
  modelsDir: Type.String({
    env: 'MODELS_DIR',
    default: 'models',
    description: 'Folder with bundled models/<task>/ artifacts, published when the registry has none.',
  }),
  /** TensorFlow.js backend preference. */
  backend: Type.Union([Type.Literal('tensorflow'), Type.Literal('wasm'), Type.Literal('cpu')], {
    env: 'TF_BACKEND',
    default: 'tensorflow',
    description: 'Preferred TensorFlow.js backend (tensorflow, wasm, cpu); falls back when unavailable.',
  }),
  /** Job lock; the trainer renews it while training, and a crashed trainer's job is retaken after it. */
  lockDurationMs: timerMsField({
    env: 'TRAINER_LOCK_MS',
    default: 120_000,
    minimum: 1000,
    description: 'BullMQ lock duration of a training job in ms; a crashed trainer\'s job is retaken after it.',
  }),
  /**
   * Mirroring a dataset, the gate's reads and publishing find S3 unreachable now and then; a training
   * then goes back to the queue without spending its attempts (three, about 1.5 min apart in all),
   * for this long in all per outage, and resumes from its checkpoint; past it, it spends them.
   */
  s3OutageBudgetMs: timerMsField({
    env: 'TRAINER_S3_OUTAGE_BUDGET_MS',
    default: S3_OUTAGE_DEFAULTS.budgetMs,
    minimum: 0,
    description: 'How long a training waits out an S3 outage (unreachable, time-outs, 5xx, throttling) without spending its attempts, in milliseconds; then it fails as for any error (0: no waiting).',
  }),
  /** Hard limit on shutdown; a running training is checkpointed and handed back to the queue first. */
  shutdownTimeoutMs: timerMsField({
    env: 'SHUTDOWN_TIMEOUT_MS',
    default: 30_000,
    minimum: 1000,
    description: 'Hard limit on graceful shutdown in ms.',
  }),
});

/** The trainer's validated, frozen configuration. */
export type TrainerConfig = Readonly<Static<typeof TrainerConfigSchema>>;

/** Reads and validates the trainer's configuration; throws `ConfigError` listing every problem. */
export function loadTrainerConfig(env: Env = process.env): TrainerConfig {
  return loadConfig(TrainerConfigSchema, env);
}
