import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { INFERENCE_PRIORITY, InferenceJobSchema, inferenceJobId } from './inference.queue.js';
import { deterministicJobId } from './queue-options.js';
import { ResultMessageSchema, resultJobId } from './results.queue.js';
import { webhookJobId } from './webhooks.queue.js';

describe('queue contracts', () => {
  it('derive job ids BullMQ accepts: no colon, not an integer, one per entity', () => {
    const ids = [inferenceJobId('a:b'), resultJobId('42'), webhookJobId('d-1'), deterministicJobId('x', '1:2:3')];
    for (const id of ids) {
      expect(id).not.toContain(':');
      expect(String(Number.parseInt(id, 10))).not.toBe(id);
    }
    expect(inferenceJobId('img-1')).toBe(inferenceJobId('img-1'));
    expect(inferenceJobId('img-1')).not.toBe(resultJobId('img-1'));
  });

  it('put stat ahead of routine with positive priorities (0 would jump every queue)', () => {
    expect(INFERENCE_PRIORITY.stat).toBeGreaterThan(0);
    expect(INFERENCE_PRIORITY.stat).toBeLessThan(INFERENCE_PRIORITY.routine);
  });

  it('accept ids and keys only in inference payloads', () => {
    const payload = { studyId: 's1', imageId: 'i1', objectKey: 'originals/c/s1/i1', clientId: 'c' };
    expect(Value.Check(InferenceJobSchema, payload)).toBe(true);
    expect(Value.Check(InferenceJobSchema, { ...payload, image: 'base64...' })).toBe(false);
    expect(Value.Check(InferenceJobSchema, { ...payload, imageId: '../x' })).toBe(false);
  });

  it('tell result kinds apart', () => {
    const base = { studyId: 's', imageId: 'i', clientId: 'c', finishedAt: '2026-01-01T00:00:00Z' };
    expect(Value.Check(ResultMessageSchema, { kind: 'failed', ...base, reason: 'not an image' })).toBe(true);
    expect(Value.Check(ResultMessageSchema, { kind: 'failed', ...base })).toBe(false);
    expect(Value.Check(ResultMessageSchema, { kind: 'done', ...base, reason: 'x' })).toBe(false);
  });
});
