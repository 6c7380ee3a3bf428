import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertSafeArtifactName, digestArtifact, readArtifactDirectory, writeArtifactDirectory } from './artifact-files.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('digestArtifact', () => {
  it('does not depend on the order files were read in', () => {
    const a = digestArtifact({ 'model.json': bytes('{}'), 'weights.bin': bytes('1234') });
    const b = digestArtifact({ 'weights.bin': bytes('1234'), 'model.json': bytes('{}') });
    expect(a.contentHash).toBe(b.contentHash);
    expect(a.files['weights.bin']).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), bytes: 4 });
  });

  it('changes when bytes move from one file to the next', () => {
    const a = digestArtifact({ a: bytes('xy'), b: bytes('z') });
    const b = digestArtifact({ a: bytes('x'), b: bytes('yz') });
    expect(a.contentHash).not.toBe(b.contentHash);
  });

  it('changes when one byte changes', () => {
    const a = digestArtifact({ 'weights.bin': new Uint8Array([1, 2, 3]) });
    const b = digestArtifact({ 'weights.bin': new Uint8Array([1, 2, 4]) });
    expect(a.contentHash).not.toBe(b.contentHash);
  });
});

describe('artifact directories', () => {
  it('round-trip nested files', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'artifact-'));
    try {
      const files = { 'manifest.json': bytes('{"a":1}'), 'plots/loss.svg': bytes('<svg/>') };
      await writeArtifactDirectory(dir, files);
      expect(await readArtifactDirectory(dir)).toEqual(files);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuse names that escape the directory', () => {
    for (const bad of ['../x', '/etc/passwd', 'a//b', 'a/./b', '']) expect(() => assertSafeArtifactName(bad)).toThrow(/unsafe/);
    expect(() => assertSafeArtifactName('plots/loss.svg')).not.toThrow();
  });
});
