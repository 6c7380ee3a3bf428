/** One invalid or missing setting found while loading configuration. */
export interface ConfigIssue {
  /** Environment variable name, e.g. `REDIS_URL`. */
  readonly env: string;
  /** What is wrong with it, in words an operator can act on. */
  readonly message: string;
}

/**
 * Thrown by {@link loadConfig} when one or more settings are invalid. The message lists every
 * problem at once so an operator can fix them all before the next start.
 */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const lines = issues.map((issue) => `  - ${issue.env}: ${issue.message}`);
    super(`Invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}
