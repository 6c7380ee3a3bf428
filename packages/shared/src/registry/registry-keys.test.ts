import { describe, expect, it } from 'vitest';
import { formatVersionId, isVersionId, registryKeys } from './registry-keys.js';

describe('version ids', () => {
  it('sort by publication time and end with the hash prefix', () => {
    const hash = 'abcdef0123456789';
    const earlier = formatVersionId(new Date('2026-01-02T03:04:05.678Z'), hash);
    const later = formatVersionId(new Date('2026-01-10T00:00:00.000Z'), '00000000ffff');
    expect(earlier).toBe('20260102T030405Z-abcdef01');
    expect(isVersionId(earlier)).toBe(true);
    expect([later, earlier].sort()).toEqual([earlier, later]);
  });

  it('reject anything else', () => {
    for (const bad of ['', 'latest', '20260102T030405Z', '20260102T030405Z-ABCDEF01', '../20260102T030405Z-abcdef01']) {
      expect(isVersionId(bad)).toBe(false);
    }
  });

  it('promotion history keys sort by time, then sequence', () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const keys = [registryKeys.promotion('t', at, 10), registryKeys.promotion('t', at, 9), registryKeys.promotion('t', new Date('2025-12-31T00:00:00Z'), 11)];
    expect([...keys].sort()).toEqual([keys[2], keys[1], keys[0]]);
  });
});
