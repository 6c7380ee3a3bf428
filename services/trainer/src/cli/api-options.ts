import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ApiConnection } from './training-api.client.js';

/** Where the API listens when neither `--api` nor `BTD_API_URL` says otherwise (`npm start`'s default port). */
export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

/** The connection options every subcommand takes. */
export function addApiOptions(command: Command): Command {
  return command
    .option('--api <url>', `API base URL (default: $BTD_API_URL, else ${DEFAULT_API_URL})`)
    .option('--key <key>', 'API key (default: $BTD_API_KEY, else the key `npm start` wrote to data/local-api-key)');
}

/**
 * The file `npm start` keeps the `local` client's key in, under `DATA_DIR` (default `data`) of
 * the folder the command runs in.
 */
function localKeyFile(env: NodeJS.ProcessEnv): string {
  return path.resolve(env.DATA_DIR ?? 'data', 'local-api-key');
}

function readLocalKey(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves `--api` and `--key` against their defaults. This is the only place the command line
 * reads its environment (`BTD_API_URL`, `BTD_API_KEY`, `DATA_DIR`).
 */
export function resolveConnection(options: { api?: string; key?: string }, env: NodeJS.ProcessEnv = process.env): ApiConnection {
  const url = options.api ?? env.BTD_API_URL ?? DEFAULT_API_URL;
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new Error(`--api must be an http(s) URL such as ${DEFAULT_API_URL}, not ${JSON.stringify(url)}`);
  }
  const keyFile = localKeyFile(env);
  const key = options.key ?? env.BTD_API_KEY ?? readLocalKey(keyFile);
  if (!key) throw new Error(`no API key: pass --key, set BTD_API_KEY, or run where \`npm start\` wrote ${path.relative(process.cwd(), keyFile)}`);
  return { url, key };
}
