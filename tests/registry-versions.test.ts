import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ArtifactIntegrityError,
  digestArtifact,
  isVersionId,
  readArtifactDirectory,
  registryKeys,
  type PromotionNotice,
} from '@btd/shared';
import { makeArtifact, useRegistryEnv } from './registry-fixtures.js';

const env = useRegistryEnv();

describe('publishing', () => {
  it('stores an artifact as an immutable, time-sortable version with its content hash', async () => {
    const dir = await makeArtifact(env.dir, 'tumor-binary');
    const published = await env.registry.publishDirectory('tumor-binary', dir, { source: { kind: 'test' } });
    const files = await readArtifactDirectory(dir);

    expect(isVersionId(published.version)).toBe(true);
    expect(published.contentHash).toBe(digestArtifact(files).contentHash);
    expect(published.version.endsWith(published.contentHash.slice(0, 8))).toBe(true);

    const fetched = await env.registry.fetchArtifact('tumor-binary', published.version);
    expect(Object.keys(fetched.files).sort()).toEqual(Object.keys(files).sort());
    for (const [name, bytes] of Object.entries(files)) expect(Buffer.compare(Buffer.from(fetched.files[name]!), Buffer.from(bytes))).toBe(0);

    const [summary] = await env.registry.listVersions('tumor-binary');
    expect(summary).toMatchObject({ version: published.version, state: 'candidate', promoted: false, source: { kind: 'test' } });
    expect(summary?.manifest?.task).toBe('tumor-binary');
  });

  it('returns the existing version when the same bytes are published again', async () => {
    const dir = await makeArtifact(env.dir, 'tumor-binary');
    const first = await env.registry.publishDirectory('tumor-binary', dir);
    const again = await env.registry.publishDirectory('tumor-binary', dir);
    expect(again).toEqual({ ...first, alreadyPublished: true });
    expect(await env.registry.listVersionIds('tumor-binary')).toEqual([first.version]);
  });

  it('lists versions newest first and ignores a publication that never wrote its digest', async () => {
    let clock = Date.parse('2026-03-01T10:00:00Z');
    const { ModelRegistry } = await import('@btd/shared');
    const registry = new ModelRegistry({ store: env.store, redis: env.redis, namespace: env.prefix, now: () => new Date((clock += 1000)) });
    const older = await registry.publishDirectory('tumor-type', await makeArtifact(env.dir, 'tumor-type'));
    const newer = await registry.publishDirectory('tumor-type', await makeArtifact(env.dir, 'tumor-type'));
    // A publisher that crashed after the files but before the digest.
    await env.store.put(registryKeys.file('tumor-type', '20991231T000000Z-deadbeef', 'manifest.json'), '{}', 'application/json');

    const listed = await registry.listVersions('tumor-type');
    expect(listed.map((v) => v.version)).toEqual([newer.version, older.version]);
  });

  it('refuses an artifact of another task', async () => {
    const dir = await makeArtifact(env.dir, 'tumor-type');
    await expect(env.registry.publishDirectory('tumor-binary', dir)).rejects.toThrow(/tumor-type model, not tumor-binary/);
  });

  it('detects bytes changed in storage after publication', async () => {
    const published = await env.registry.publishDirectory('tumor-binary', await makeArtifact(env.dir, 'tumor-binary'));
    const key = registryKeys.file('tumor-binary', published.version, 'weights.bin');
    const weights = await env.store.get(key);
    weights[weights.length - 1]! ^= 0xff;
    await env.store.put(key, weights, 'application/octet-stream');
    await expect(env.registry.fetchArtifact('tumor-binary', published.version)).rejects.toBeInstanceOf(ArtifactIntegrityError);
  });

  it('serves a version file only when the digest lists it', async () => {
    const dir = await makeArtifact(env.dir, 'tumor-binary');
    const published = await env.registry.publishDirectory('tumor-binary', dir);
    const manifest = await env.registry.readFile('tumor-binary', published.version, 'manifest.json');
    expect(manifest.toString()).toBe(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
    await expect(env.registry.readFile('tumor-binary', published.version, 'content-hash.json')).rejects.toThrow();
  });
});

describe('the promotion channel', () => {
  it('announces a promotion to subscribers after the pointer is written', async () => {
    const published = await env.registry.publishDirectory('tumor-binary', await makeArtifact(env.dir, 'tumor-binary'));
    const notices: PromotionNotice[] = [];
    let pointerSeen: string | undefined;
    const subscription = await env.registry.subscribe((notice) => {
      notices.push(notice);
      void env.registry.promoted('tumor-binary').then((p) => (pointerSeen = p?.version));
    });
    try {
      await env.registry.promote('tumor-binary', published.version, { by: 'tester', reason: 'test' });
      await expect.poll(() => notices.length, { timeout: 15_000 }).toBe(1);
      expect(notices[0]).toEqual({ task: 'tumor-binary', version: published.version, contentHash: published.contentHash, sequence: 1, action: 'promote' });
      await expect.poll(() => pointerSeen, { timeout: 15_000 }).toBe(published.version);
    } finally {
      await subscription.close();
      await subscription.close();
    }
  });
});
