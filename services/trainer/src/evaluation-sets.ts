import { ConfigError, type ConfigIssue, type TrainingJob } from '@btd/shared';
import type { TrainerConfig } from './config.js';
import { InvalidDatasetError, checkEvaluationSet, resolveEvaluationSet, type DatasetResolver } from './dataset-source.js';
import { parseDatasetSpec } from './dataset-spec.js';

type EvaluationSetConfig = Pick<TrainerConfig, 'evalSetTumorBinary' | 'evalSetTumorType'>;

/** Each task's evaluation-set setting: its field and its environment variable. */
const SETTINGS = {
  'tumor-binary': { field: 'evalSetTumorBinary', env: 'EVAL_SET_TUMOR_BINARY' },
  'tumor-type': { field: 'evalSetTumorType', env: 'EVAL_SET_TUMOR_TYPE' },
} as const satisfies Record<TrainingJob['task'], { field: keyof EvaluationSetConfig; env: string }>;

/** A task's configured evaluation set, with the variable that configures it; null when none is. */
export function configuredEvaluationSet(config: EvaluationSetConfig, task: TrainingJob['task']): { value: string; env: string } | null {
  const { field, env } = SETTINGS[task];
  const value = config[field];
  return value ? { value, env } : null;
}

/**
 * Thrown when a configured evaluation set cannot be read: the trainer's setting is at fault, not the
 * request, so the job is retried (from its checkpoint) once an operator has fixed it.
 */
export class EvaluationSetUnavailableError extends Error {
  constructor(readonly env: string, message: string, options?: { cause?: unknown }) {
    super(`the evaluation set configured in ${env} cannot be used: ${message}`, options);
    this.name = 'EvaluationSetUnavailableError';
  }
}

/** Mirrors or finds a task's configured evaluation set; null when none is configured. */
export async function resolveConfiguredEvaluationSet(config: EvaluationSetConfig, task: TrainingJob['task'], resolver: DatasetResolver): Promise<string | null> {
  const configured = configuredEvaluationSet(config, task);
  if (!configured) return null;
  try {
    return await resolveEvaluationSet(parseDatasetSpec(configured.value), resolver);
  } catch (error) {
    if (!(error instanceof InvalidDatasetError)) throw error;
    throw new EvaluationSetUnavailableError(configured.env, error.message, { cause: error });
  }
}

/**
 * Checks every configured evaluation set at start-up, so a mistyped one stops the trainer at once
 * instead of failing every training after its last epoch.
 *
 * @throws ConfigError naming each unusable setting (S3 or network errors propagate as they are)
 */
export async function checkEvaluationSets(config: EvaluationSetConfig, resolver: DatasetResolver): Promise<void> {
  const issues: ConfigIssue[] = [];
  for (const task of Object.keys(SETTINGS) as TrainingJob['task'][]) {
    const configured = configuredEvaluationSet(config, task);
    if (!configured) continue;
    try {
      await checkEvaluationSet(parseDatasetSpec(configured.value), resolver);
    } catch (error) {
      if (!(error instanceof InvalidDatasetError)) throw error;
      issues.push({ env: configured.env, message: `evaluation set of ${task} cannot be used: ${error.message}` });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}
