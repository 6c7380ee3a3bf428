import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, type ConfigIssue } from '@btd/shared';
import { readOrCreateSecret } from './local-secret.js';

/** The caller behind an API key. */
export interface ApiClient {
  readonly id: string;
  /** Admin clients may call admin routes (model publishing, queue inspection). */
  readonly admin: boolean;
}

/** Resolves presented keys to clients. Holds SHA-256 hashes only, never the keys. */
export interface ApiKeyRing {
  identify(presentedKey: string): ApiClient | undefined;
  readonly clientIds: readonly string[];
}

/** What the key ring is built from; mirrors the config fields of the same names. */
export interface ApiKeySources {
  readonly apiKeys?: string;
  readonly apiKeysFile?: string;
  readonly adminClients: string;
  /** Where the generated `local` key is kept when no keys are configured. */
  readonly dataDir: string;
}

/** How the ring came about, so start-up can tell the operator. */
export interface LoadedKeyRing {
  readonly ring: ApiKeyRing;
  /** Set when no keys were configured and a key for `local` is in use. */
  readonly local?: { readonly key: string; readonly file: string; readonly created: boolean };
}

const CLIENT_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const MIN_KEY_LENGTH = 16;
/** Client that owns the key generated when none are configured. */
export const LOCAL_CLIENT = 'local';

function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Parses `client:key` pairs separated by commas or new lines (`#` starts a comment line).
 * Problems are reported against `source` without echoing the keys.
 */
export function parseApiKeys(text: string, source: string): { pairs: [string, string][]; issues: ConfigIssue[] } {
  const pairs: [string, string][] = [];
  const issues: ConfigIssue[] = [];
  const entries = text.split(/[,\n]/).map((entry) => entry.trim()).filter((entry) => entry && !entry.startsWith('#'));
  entries.forEach((entry, index) => {
    const colon = entry.indexOf(':');
    const client = colon > 0 ? entry.slice(0, colon) : '';
    const key = colon > 0 ? entry.slice(colon + 1) : '';
    if (!CLIENT_ID.test(client)) {
      issues.push({ env: source, message: `entry ${index + 1} needs the form client:key (client: letters, digits, . _ -)` });
    } else if (key.length < MIN_KEY_LENGTH) {
      issues.push({ env: source, message: `key of client "${client}" is shorter than ${MIN_KEY_LENGTH} characters` });
    } else pairs.push([client, key]);
  });
  return { pairs, issues };
}

function buildRing(pairs: [string, string][], adminClients: ReadonlySet<string>): ApiKeyRing {
  const byHash = new Map<string, ApiClient>();
  for (const [id, key] of pairs) byHash.set(hashKey(key), { id, admin: adminClients.has(id) });
  const clientIds = [...new Set(pairs.map(([id]) => id))];
  return { identify: (presented) => byHash.get(hashKey(presented)), clientIds };
}

async function localKey(dataDir: string): Promise<{ key: string; file: string; created: boolean }> {
  const file = path.resolve(dataDir, 'local-api-key');
  const { value, created } = await readOrCreateSecret(file, MIN_KEY_LENGTH);
  return { key: value, file, created };
}

/**
 * Builds the key ring from `API_KEYS` and `API_KEYS_FILE`. With neither set, a key for the
 * `local` client is read from (or created in) `<dataDir>/local-api-key`, so a fresh machine
 * works without setup while a configured deployment never gets an implicit key.
 *
 * @throws ConfigError listing every malformed entry
 */
export async function loadApiKeyRing(sources: ApiKeySources): Promise<LoadedKeyRing> {
  const admins = new Set(sources.adminClients.split(',').map((id) => id.trim()).filter(Boolean));
  const fromEnv = parseApiKeys(sources.apiKeys ?? '', 'API_KEYS');
  const fileText = sources.apiKeysFile
    ? await readFile(sources.apiKeysFile, 'utf8').catch(() => {
        throw new ConfigError([{ env: 'API_KEYS_FILE', message: `cannot read ${sources.apiKeysFile}` }]);
      })
    : '';
  const fromFile = parseApiKeys(fileText, 'API_KEYS_FILE');
  const issues = [...fromEnv.issues, ...fromFile.issues];
  if (issues.length > 0) throw new ConfigError(issues);
  const pairs = [...fromEnv.pairs, ...fromFile.pairs];
  if (pairs.length > 0) return { ring: buildRing(pairs, admins) };
  const local = await localKey(sources.dataDir);
  return { ring: buildRing([[LOCAL_CLIENT, local.key]], admins), local };
}
