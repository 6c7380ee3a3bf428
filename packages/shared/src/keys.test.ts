import { describe, expect, it } from 'vitest';
import { originalKey, overlayKey, resultKey, resultsPrefix, studyOriginalsPrefix } from './keys.js';

describe('object keys', () => {
  it('follow from ids alone', () => {
    const ids = { clientId: 'pacs-1', studyId: 's_42', imageId: 'img.7' };
    expect(originalKey(ids)).toBe('originals/pacs-1/s_42/img.7');
    expect(originalKey(ids).startsWith(studyOriginalsPrefix('pacs-1', 's_42'))).toBe(true);
    expect(resultKey('img.7')).toBe('results/img.7/result.json');
    expect(overlayKey('img.7')).toBe('results/img.7/overlay.png');
    expect(resultKey('img.7').startsWith(resultsPrefix('img.7'))).toBe(true);
  });

  it('refuse ids that could escape their prefix', () => {
    for (const bad of ['..', '.', 'a/b', '', 'a b', 'x\n']) {
      expect(() => originalKey({ clientId: 'c', studyId: 's', imageId: bad }), JSON.stringify(bad)).toThrow(TypeError);
    }
  });
});
