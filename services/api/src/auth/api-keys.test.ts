import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '@btd/shared';
import { LOCAL_CLIENT, loadApiKeyRing, parseApiKeys } from './api-keys.js';

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'btd-keys-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('parseApiKeys', () => {
  it('reads client:key pairs separated by commas or lines, skipping comments', () => {
    const { pairs, issues } = parseApiKeys('pacs:0123456789abcdef0123, ops:fedcba9876543210fedc\n# old:xxxxxxxxxxxxxxxxxxxx\n', 'API_KEYS');
    expect(issues).toEqual([]);
    expect(pairs).toEqual([
      ['pacs', '0123456789abcdef0123'],
      ['ops', 'fedcba9876543210fedc'],
    ]);
  });

  it('reports every malformed entry without echoing keys', () => {
    const { issues } = parseApiKeys('nocolon, bad client:0123456789abcdef, pacs:Zq9tiny', 'API_KEYS');
    expect(issues).toHaveLength(3);
    expect(issues.map((issue) => issue.message).join(' ')).not.toContain('Zq9tiny');
  });
});

describe('loadApiKeyRing', () => {
  it('identifies clients by key and marks admins', async () => {
    const { ring, local } = await loadApiKeyRing({ apiKeys: 'pacs:0123456789abcdef, ops:fedcba9876543210', adminClients: 'ops', dataDir });
    expect(local).toBeUndefined();
    expect(ring.identify('0123456789abcdef')).toEqual({ id: 'pacs', admin: false });
    expect(ring.identify('fedcba9876543210')).toEqual({ id: 'ops', admin: true });
    expect(ring.identify('0123456789abcdeX')).toBeUndefined();
  });

  it('merges keys from API_KEYS_FILE', async () => {
    const file = path.join(dataDir, 'keys.txt');
    await writeFile(file, '# clients\nward7:aaaaaaaaaaaaaaaaaaaa\n');
    const { ring } = await loadApiKeyRing({ apiKeys: 'pacs:0123456789abcdef', apiKeysFile: file, adminClients: '', dataDir });
    expect(ring.clientIds).toEqual(['pacs', 'ward7']);
  });

  it('stops with a ConfigError naming the variable when a key is malformed', async () => {
    const error = await loadApiKeyRing({ apiKeys: 'pacs:short', adminClients: '', dataDir }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]?.env).toBe('API_KEYS');
  });

  it('creates a key for the local client when none is configured, and reuses it on the next start', async () => {
    const first = await loadApiKeyRing({ adminClients: '', dataDir });
    expect(first.local?.created).toBe(true);
    const file = path.join(dataDir, 'local-api-key');
    expect((await readFile(file, 'utf8')).trim()).toBe(first.local?.key);
    expect((await stat(file)).mode & 0o077).toBe(0);
    expect(first.ring.identify(first.local!.key)).toEqual({ id: LOCAL_CLIENT, admin: false });

    const second = await loadApiKeyRing({ adminClients: '', dataDir });
    expect(second.local).toMatchObject({ created: false, key: first.local?.key });
  });
});
