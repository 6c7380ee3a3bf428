import { describe, expect, it } from 'vitest';
import type { StudyFields } from '../intake/read-study-form.js';
import type { StudyRecord } from '../store/records.js';
import { externalIdConflict, type ConflictingSubmission } from './external-id-conflict.js';
import { fingerprintOfContent, type FingerprintedContent } from './fingerprint.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

/** A submission under ACC-1: its fields as given, its batch, and its files' digests in the order fingerprinted. */
function submission(fields: StudyFields, files: string[], batchId?: string): ConflictingSubmission {
  const content: FingerprintedContent = { fields: { externalId: 'ACC-1', ...fields }, batchId, files };
  return { content, study: { priority: fields.priority ?? 'routine', callbackUrl: fields.callbackUrl, batchId } };
}

/**
 * The study holding ACC-1, stored from `held`, and its images: one per file (or `frames` sharing one
 * original), in the order of `held`'s files unless `stored` gives another (files sent in any order).
 */
function holderOf(held: ConflictingSubmission, options: { withDigests?: boolean; frames?: number; stored?: string[] } = {}) {
  const { content, study } = held;
  const holder: StudyRecord = {
    id: 'stu_holder',
    clientId: 'alice',
    externalId: 'ACC-1',
    ...(study.callbackUrl ? { callbackUrl: study.callbackUrl } : {}),
    ...(study.batchId ? { batchId: study.batchId } : {}),
    priority: study.priority,
    state: 'queued',
    createdAt: new Date().toISOString(),
    imageIds: [],
    doneCount: 0,
    failedCount: 0,
    fingerprint: fingerprintOfContent(content),
  };
  const images = (options.stored ?? content.files).flatMap((sha256, file) =>
    Array.from({ length: options.frames ?? 1 }, () => ({ objectKey: `originals/alice/stu_holder/img_${file}`, ...(options.withDigests === false ? {} : { sha256 }) })),
  );
  return { holder, images };
}

function messageOf(held: ConflictingSubmission, ours: ConflictingSubmission, options?: Parameters<typeof holderOf>[1]): string {
  const { holder, images } = holderOf(held, options);
  const error = externalIdConflict(holder, images, ours);
  expect([error.statusCode, error.code]).toEqual([409, 'external_id_conflict']);
  return error.message.replace('externalId already names study stu_holder, submitted with ', '');
}

describe('externalIdConflict', () => {
  it('says the images differ, and which fields also do', () => {
    expect(messageOf(submission({}, [A, B]), submission({}, [A, C]))).toBe('different images');
    expect(messageOf(submission({}, [A]), submission({ priority: 'stat' }, [B]))).toBe('different images and a different priority');
  });

  it('names the fields that differ when the images are the same', () => {
    expect(messageOf(submission({}, [A]), submission({ priority: 'stat' }, [A]))).toBe('the same images but a different priority');
    const hooked = submission({ callbackUrl: 'https://pacs.example/hooks' }, [A], 'bat_1');
    expect(messageOf(hooked, submission({}, [A]))).toBe('the same images but a different callbackUrl and batch');
    expect(messageOf(submission({ priority: 'stat' }, [A]), submission({ callbackUrl: 'https://pacs.example/hooks' }, [A], 'bat_1'))).toBe(
      'the same images but a different priority, callbackUrl and batch',
    );
  });

  it('tells a priority given in one submission and left to the same default in the other', () => {
    expect(messageOf(submission({}, [A]), submission({ priority: 'routine' }, [A]))).toBe('the same images but its priority left to the default, which this request gives');
    expect(messageOf(submission({ priority: 'routine' }, [A]), submission({}, [A]))).toBe('the same images but its priority given, which this request leaves to the default');
  });

  it('tells the same images in another order, and reads a multi-frame original as one file', () => {
    expect(messageOf(submission({}, [A, B]), submission({}, [B, A]))).toBe('the same images in another order');
    expect(messageOf(submission({}, [A, B]), submission({ priority: 'stat' }, [A, B]), { frames: 3 })).toBe('the same images but a different priority');
    // STOW-RS instances, fingerprinted sorted, stored in the order they came.
    expect(messageOf(submission({}, [A, B]), submission({ priority: 'stat' }, [A, B]), { stored: [B, A] })).toBe('the same images but a different priority');
  });

  it('names only the fields when the holder predates the digests of its files', () => {
    expect(messageOf(submission({}, [A]), submission({ priority: 'stat' }, [A]), { withDigests: false })).toBe('a different priority');
    expect(messageOf(submission({}, [A]), submission({}, [B]), { withDigests: false })).toBe('different images or fields');
  });
});
