import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TObject } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { describeConfig } from '@btd/shared';
import { ApiConfigSchema } from '@btd/api';
import { WorkerConfigSchema } from '@btd/inference-worker';
import { TrainerConfigSchema } from '@btd/trainer';
import { REPO_ROOT } from './helpers/index.js';

/** The parts of a docker-compose.yml service these checks read. */
interface ComposeService {
  build?: { context?: string; target?: string };
  command?: string[];
  env_file?: string | (string | { path: string; required?: boolean })[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: string[];
  volumes?: string[];
}

function readCompose(): { services: Record<string, ComposeService> } {
  // `merge` resolves the `<<: *service-env` keys as Compose does.
  return parse(readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
}

/** A service's environment as Compose hands it over, whichever of its two forms the file uses. */
function environmentOf(service: ComposeService): Map<string, string> {
  const entries = Array.isArray(service.environment)
    ? service.environment.map((line) => {
        const at = line.indexOf('=');
        return at < 0 ? [line, ''] : [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(service.environment ?? {}).map(([key, value]) => [key, value === null ? '' : String(value)]);
  return new Map(entries as [string, string][]);
}

const SCHEMAS: Record<string, TObject> = {
  api: ApiConfigSchema,
  'inference-worker': WorkerConfigSchema,
  trainer: TrainerConfigSchema,
};

/** Variables an image may set that are no btd setting: read by Node's libraries (Fastify, pino, …). */
const LIBRARY_ENV = new Set(['NODE_ENV']);

/** One stage of the Dockerfile: what it is built from, and the variables its own `ENV` lines set. */
interface DockerStage {
  from: string;
  env: Map<string, string>;
}

/** The Dockerfile's stages by name, with their `ENV key=value` instructions (continued lines joined). */
function dockerStages(): Map<string, DockerStage> {
  const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages = new Map<string, DockerStage>();
  let current: DockerStage | undefined;
  for (const line of text.split('\n')) {
    const from = /^FROM\s+(\S+)\s+AS\s+(\S+)/i.exec(line);
    if (from) stages.set(from[2]!, (current = { from: from[1]!, env: new Map() }));
    const env = /^ENV\s+(.*)$/i.exec(line);
    if (env && current) for (const [, key, value] of env[1]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S*)/g)) current.env.set(key!, value!);
  }
  return stages;
}

/** The variables a stage's image holds: its own, and those of the stages it is built from. */
function imageEnv(stages: Map<string, DockerStage>, name: string): Map<string, string> {
  const stage = stages.get(name);
  if (!stage) return new Map();
  return new Map([...imageEnv(stages, stage.from), ...stage.env]);
}

describe('docker-compose.yml', () => {
  const compose = readCompose();

  it.each(Object.keys(SCHEMAS))('sets only settings that %s reads', (name) => {
    const service = compose.services[name];
    expect(service, `service ${name}`).toBeDefined();
    const known = new Set(describeConfig(SCHEMAS[name]!).map((field) => field.env));
    const unknown = [...environmentOf(service!).keys()].filter((key) => !known.has(key));
    expect(unknown, `set for ${name} in docker-compose.yml but not a setting of it`).toEqual([]);
  });

  it.each(Object.keys(SCHEMAS))('hands the settings of .env on to %s', (name) => {
    const files = compose.services[name]?.env_file;
    const paths = (typeof files === 'string' ? [files] : (files ?? [])).map((file) => (typeof file === 'string' ? file : file.path));
    expect(paths, `env_file of ${name}`).toContain('.env');
  });

  it('fixes the settings that name places inside the containers, whatever .env says', () => {
    // Mount target to source; a source may be `${VAR:-default}`, colon and all.
    const mounts = (name: string) =>
      new Map((compose.services[name]?.volumes ?? []).map((volume) => /^(\$\{[^}]*\}|[^:]+):([^:]+)/.exec(volume)!.slice(1, 3).reverse() as [string, string]));
    const api = environmentOf(compose.services.api!);
    expect(api.get('HOST')).toBe('0.0.0.0');
    expect(mounts('api').get(api.get('DATA_DIR')!)).toBe('api-data');
    const trainer = environmentOf(compose.services.trainer!);
    expect(mounts('trainer').get('/app/data')).toBe('trainer-data');
    expect(trainer.get('TRAINER_WORK_DIR')).toMatch(/^\/app\/data\//);
    expect(mounts('trainer').has(trainer.get('TRAINER_DATASET_ROOTS')!)).toBe(true);
    const stages = dockerStages();
    for (const name of ['inference-worker', 'trainer']) {
      const imageModels = imageEnv(stages, name).get('MODELS_DIR');
      expect(imageModels, `MODELS_DIR of the ${name} image`).toBe('/app/models');
      expect(environmentOf(compose.services[name]!).get('MODELS_DIR'), name).toBe(imageModels);
    }
    expect(imageEnv(stages, 'api').get('DATA_DIR')).toBe(api.get('DATA_DIR'));
  });

  it('starts MinIO only with a password the operator chose, never a default one', () => {
    const text = readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
    const uses = [...text.matchAll(/\$\{MINIO_ROOT_PASSWORD([^}]*)\}/g)].map((match) => match[1]);
    expect(uses.length).toBeGreaterThan(0);
    for (const use of uses) expect(use, 'MINIO_ROOT_PASSWORD must be required (${MINIO_ROOT_PASSWORD:?…})').toMatch(/^:\?/);
  });

  it('runs Redis with an append-only file fsynced before each answer, so that no acknowledged study is lost with its host', () => {
    const command = compose.services.redis?.command ?? [];
    const option = (name: string) => (command.includes(`--${name}`) ? command[command.indexOf(`--${name}`) + 1] : undefined);
    expect(option('appendonly')).toBe('yes');
    // everysec answers before the fsync: a host crash or power loss takes up to about 2 s of acknowledged writes with it.
    expect(option('appendfsync')).toBe('always');
  });

  it('builds each service from a stage of the root Dockerfile', () => {
    const stages = new Set([...readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8').matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((match) => match[1]));
    for (const name of Object.keys(SCHEMAS)) {
      expect(compose.services[name]?.build?.target, `build target of ${name}`).toBe(name);
      expect(stages.has(name), `Dockerfile stage ${name}`).toBe(true);
    }
  });
});

describe('Dockerfile', () => {
  const stages = dockerStages();

  it.each(Object.keys(SCHEMAS))("sets in %s's image only settings that service reads", (name) => {
    expect(stages.has(name), `Dockerfile stage ${name}`).toBe(true);
    const known = new Set(describeConfig(SCHEMAS[name]!).map((field) => field.env));
    const unknown = [...imageEnv(stages, name).keys()].filter((key) => !known.has(key) && !LIBRARY_ENV.has(key));
    expect(unknown, `set in the ${name} image (its stage or one it is built from) but not a setting of it`).toEqual([]);
  });

  it('runs the images on a Node.js major that every production dependency admits', () => {
    const major = Number(/^ARG\s+NODE_VERSION=(\d+)/m.exec(readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'))?.[1]);
    // Even majors are the long-term-support lines.
    expect(major % 2, `NODE_VERSION ${major}`).toBe(0);
    const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; engines?: { node?: string } }>;
    };
    // A lone lower bound (`>=22`, `>= 0.8`) is what a newer Node.js fails; ranges with upper bounds or alternatives are left out.
    const needsNewer = Object.entries(lock.packages).flatMap(([name, entry]) => {
      const bound = entry.dev ? undefined : /^>=\s*(\d+)[.\dx]*$/.exec(entry.engines?.node?.trim() ?? '');
      return bound && Number(bound[1]) > major ? [`${name} (${entry.engines?.node})`] : [];
    });
    expect(needsNewer, `production dependencies that need a newer Node.js than ${major}`).toEqual([]);
  });
});

describe('infra/prometheus.yml', () => {
  const compose = readCompose();
  const prometheus = parse(readFileSync(path.join(REPO_ROOT, 'infra/prometheus.yml'), 'utf8')) as {
    scrape_configs: { job_name: string; metrics_path?: string; static_configs?: { targets: string[] }[]; dns_sd_configs?: { names: string[]; port: number }[] }[];
  };
  const job = (name: string) => prometheus.scrape_configs.find((config) => config.job_name === name);

  it('scrapes the API on the port it listens on', () => {
    const api = job('btd-api');
    expect(api?.metrics_path ?? '/metrics').toBe('/metrics');
    expect(api?.static_configs?.flatMap((config) => config.targets)).toEqual([`api:${environmentOf(compose.services.api!).get('PORT')}`]);
  });

  it('scrapes every inference worker on its metrics port', () => {
    const workers = job('btd-inference-worker');
    const port = Number(environmentOf(compose.services['inference-worker']!).get('WORKER_METRICS_PORT'));
    expect(port).toBeGreaterThan(0);
    expect(workers?.metrics_path ?? '/metrics').toBe('/metrics');
    expect(workers?.dns_sd_configs).toEqual([expect.objectContaining({ names: ['inference-worker'], port })]);
  });
});
