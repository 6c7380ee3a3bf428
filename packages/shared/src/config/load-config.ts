import { Kind, type Static, type TObject, type TProperties, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigError, type ConfigIssue } from './config-error.js';

/** Environment as read by {@link loadConfig}; defaults to `process.env` at the call site. */
export type Env = Readonly<Record<string, string | undefined>>;

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);
const NUMBER_PATTERN = /^-?\d+(\.\d+)?$/;

/**
 * The environment variable a config property is read from: its `env` annotation, or the
 * property name in SCREAMING_SNAKE_CASE (`redisUrl` → `REDIS_URL`).
 */
export function envNameOf(key: string, schema: TSchema): string {
  const annotated = (schema as { env?: unknown }).env;
  if (typeof annotated === 'string') return annotated;
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/**
 * Turns an environment string into the JS type the schema expects. Only exact forms are
 * accepted: TypeBox's own conversion would read `1.5` as the integer 1, hiding a typo.
 */
function coerce(raw: string, schema: TSchema): unknown {
  const kind = schema[Kind] as string;
  if (kind === 'Number' || kind === 'Integer') return NUMBER_PATTERN.test(raw.trim()) ? Number(raw) : raw;
  if (kind === 'Boolean') {
    const word = raw.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  return raw;
}

/**
 * A value as a config error shows it, on stderr and in the logs that collect it: a setting annotated
 * `secret: true` not at all, and any other without the credentials a URL may carry (`redis://:pw@host`).
 */
function shownValue(schema: TSchema, value: unknown): string {
  if ((schema as { secret?: unknown }).secret === true) return 'a value not shown: it is a secret';
  const text = typeof value === 'string' ? value.replace(/\/\/[^/?#\s]*@/g, '//…@') : value;
  return `got ${typeof text === 'string' ? JSON.stringify(text) : String(text)}`;
}

function describeErrors(schema: TSchema, value: unknown): string {
  const shown = shownValue(schema, value);
  const literals = (schema.anyOf as TSchema[] | undefined)?.map((option) => option.const as unknown);
  if (literals && literals.every((literal) => literal !== undefined)) {
    return `expected one of ${literals.join(', ')} (${shown})`;
  }
  const first = Value.Errors(schema, value).First();
  return `${first?.message ?? 'invalid value'} (${shown})`;
}

function isRequired(key: string, object: TSchema): boolean {
  const required = (object as { required?: readonly string[] }).required ?? [];
  return required.includes(key);
}

/**
 * Reads a flat TypeBox object schema from the environment.
 *
 * Each property is read from its env name (see {@link envNameOf}); empty strings count as
 * unset. Numbers and booleans are coerced, defaults applied, and every property checked.
 * All problems are collected and thrown together as one {@link ConfigError}.
 *
 * @returns a frozen object typed by the schema
 */
export function loadConfig<P extends TProperties>(schema: TObject<P>, env: Env): Readonly<Static<TObject<P>>> {
  const result: Record<string, unknown> = {};
  const issues: ConfigIssue[] = [];
  for (const [key, property] of Object.entries(schema.properties) as [string, TSchema][]) {
    const envName = envNameOf(key, property);
    const raw = env[envName];
    if (raw === undefined || raw === '') {
      if (property.default !== undefined) result[key] = structuredClone(property.default);
      else if (isRequired(key, schema)) issues.push({ env: envName, message: 'is required' });
      continue;
    }
    const value = coerce(raw, property);
    if (Value.Check(property, value)) result[key] = value;
    else issues.push({ env: envName, message: describeErrors(property, value) });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return Object.freeze(result) as Readonly<Static<TObject<P>>>;
}

/** One documented setting, as listed in `.env.example` or `--help` output. */
export interface ConfigFieldDoc {
  readonly env: string;
  readonly description: string;
  readonly default: string | undefined;
}

/** Lists a config schema's settings with their env names, descriptions and defaults. */
export function describeConfig(schema: TObject): ConfigFieldDoc[] {
  return (Object.entries(schema.properties) as [string, TSchema][]).map(([key, property]) => ({
    env: envNameOf(key, property),
    description: property.description ?? '',
    default: property.default === undefined ? undefined : String(property.default),
  }));
}

/**
 * The exit code of a service stopped by its configuration: 78 (EX_CONFIG), which supervisors can tell
 * apart from a crash, so they do not restart it into the same mistake.
 */
export const CONFIG_EXIT_CODE = 78;

/**
 * Runs a service's config loader at start-up. On a {@link ConfigError} it prints the list of
 * problems and exits with {@link CONFIG_EXIT_CODE}. Other errors propagate.
 */
export function loadConfigOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(CONFIG_EXIT_CODE);
  }
}
