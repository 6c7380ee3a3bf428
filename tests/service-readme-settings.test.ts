import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TObject } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { createLogger, describeConfig, type ModelRegistry } from '@btd/shared';
import { ApiConfigSchema } from '@btd/api';
import { RegistryModelProvider, WorkerConfigSchema, createWorkerMetrics } from '@btd/inference-worker';
import { TrainerConfigSchema } from '@btd/trainer';
import { REPO_ROOT } from './helpers/index.js';

/** One row of a README's settings table: the variables its first cell names, and its default cell. */
interface SettingsRow {
  readonly names: readonly string[];
  readonly defaultCell: string;
}

const ENV_NAME = /`([A-Z][A-Z0-9_]*)`/g;

/**
 * The rows of the table whose header starts with `variable` or `env`, under the README's heading
 * `heading`. A row's first cell holds one or more variables in code spans.
 */
function settingsTable(readme: string, heading: string): SettingsRow[] {
  return tableRows(readme, heading, /^\|\s*(variable|env)\s*\|/).map(([first = '', second = '']) => ({
    names: [...first.matchAll(ENV_NAME)].map((match) => match[1]!),
    defaultCell: second,
  }));
}

/** The cells of each row of the first table under the README's heading `heading` whose header matches `header`. */
function tableRows(readme: string, heading: string, header: RegExp): string[][] {
  const lines = readme.split('\n');
  const start = lines.findIndex((line) => line.replace(/^#+\s*/, '') === heading && line.startsWith('#'));
  expect(start, `heading "${heading}"`).toBeGreaterThanOrEqual(0);
  const at = lines.findIndex((line, index) => index > start && header.test(line));
  expect(at, `table under "${heading}"`).toBeGreaterThan(start);
  const rows: string[][] = [];
  for (const line of lines.slice(at + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.split('|').slice(1).map((cell) => cell.trim()));
  }
  return rows;
}

/** The variables a README names on its line `plus the shared …` (`S3_*` names every `S3_` variable). */
function sharedMentioned(readme: string): string[] {
  const line = readme.split('\n').find((text) => text.startsWith('plus the shared')) ?? '';
  return [...line.matchAll(/`([A-Z][A-Z0-9_]*\*?)`/g)].map((match) => match[1]!);
}

/** Whether a default cell states the schema's default: the value itself, or for none a dash, `unset` or words. */
function statesDefault(cell: string, schemaDefault: string | undefined): boolean {
  const value = cell.replace(/`/g, '').trim();
  if (schemaDefault === undefined) return value === '—' || value === 'unset' || (!cell.startsWith('`') && /\s/.test(value));
  if (schemaDefault === '') return value === '(empty)' || value === '';
  return value === schemaDefault;
}

const READMES: { service: string; file: string; heading: string; schema: TObject }[] = [
  { service: 'api', file: 'services/api/README.md', heading: 'Settings', schema: ApiConfigSchema },
  { service: 'trainer', file: 'services/trainer/README.md', heading: 'Configuration', schema: TrainerConfigSchema },
  { service: 'inference-worker', file: 'services/inference-worker/README.md', heading: 'Configuration', schema: WorkerConfigSchema },
];

describe.each(READMES)("$file's settings table", ({ file, heading, schema }) => {
  const readme = readFileSync(path.join(REPO_ROOT, file), 'utf8');
  const rows = settingsTable(readme, heading);
  const fields = describeConfig(schema);
  const documented = rows.flatMap((row) => row.names);

  it('names only settings the service reads', () => {
    const read = new Set(fields.map((field) => field.env));
    expect(documented.filter((name) => !read.has(name))).toEqual([]);
    expect(new Set(documented).size, 'each setting once').toBe(documented.length);
  });

  it('names every setting the service reads, in the table or among the shared ones', () => {
    const shared = sharedMentioned(readme);
    const covered = (env: string) => documented.includes(env) || shared.some((name) => (name.endsWith('*') ? env.startsWith(name.slice(0, -1)) : env === name));
    expect(fields.map((field) => field.env).filter((env) => !covered(env))).toEqual([]);
  });

  it('gives each setting the default the service applies', () => {
    const wrong = rows.flatMap((row) =>
      row.names
        .map((name) => ({ name, cell: row.defaultCell, applied: fields.find((field) => field.env === name)?.default }))
        .filter(({ cell, applied }) => !statesDefault(cell, applied)),
    );
    expect(wrong).toEqual([]);
  });
});

describe("services/inference-worker/README.md's metrics table", () => {
  it('names every btd_ metric a worker serves, and no other', async () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'services/inference-worker/README.md'), 'utf8');
    const documented = tableRows(readme, 'Metrics', /^\|\s*metric\s*\|/).map(([first = '']) => /`(btd_\w+)`/.exec(first)?.[1]);
    const metrics = createWorkerMetrics();
    // The model metrics come with the registry provider, which reads nothing before it starts.
    new RegistryModelProvider({
      registry: {} as ModelRegistry,
      logger: createLogger({ name: 'readme', level: 'silent', pretty: false }),
      workerId: 'readme',
      metrics: metrics.registry,
    });
    const served = (await metrics.registry.getMetricsAsJSON()).map((metric) => metric.name).filter((name) => name.startsWith('btd_'));
    expect(documented.sort()).toEqual(served.sort());
  });
});
