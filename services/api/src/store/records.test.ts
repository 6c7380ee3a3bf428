import { describe, expect, it } from 'vitest';
import { JSON_FIELDS, fromHash, hashFromPairs, toHash, type StudyRecord } from './records.js';

const study: StudyRecord = {
  id: 'st_1',
  clientId: 'local',
  priority: 'routine',
  state: 'done',
  createdAt: '2026-11-29T08:00:00.000Z',
  completedAt: '2026-11-29T08:00:01.000Z',
  imageIds: ['im_1', 'im_2'],
  doneCount: 2,
  failedCount: 0,
  fingerprint: 'abc',
};

describe('hashFromPairs', () => {
  it('reads a study back from the field, value list a Lua script returns', () => {
    const pairs = Object.entries(toHash(study)).flat();
    expect(fromHash<StudyRecord>(hashFromPairs(pairs), JSON_FIELDS.study)).toEqual(study);
  });

  it('gives an empty hash, hence no record, for an empty list', () => {
    expect(fromHash<StudyRecord>(hashFromPairs([]), JSON_FIELDS.study)).toBeUndefined();
  });
});
