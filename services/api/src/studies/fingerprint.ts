import { createHash } from 'node:crypto';
import type { StudyFields, StudyForm } from '../intake/read-study-form.js';
import { fileDigest } from './resume-submission.js';

/**
 * What a submission's fingerprint covers: its text fields as given (a priority left out stays out),
 * its batch, and the SHA-256 of each file, in the order fingerprinted.
 */
export interface FingerprintedContent {
  readonly fields: StudyFields;
  readonly batchId: string | undefined;
  readonly files: readonly string[];
}

/** The content of a submission, its files in order unless `inAnyOrder` (sorted then). */
export function contentOf(form: StudyForm, batchId: string | undefined, inAnyOrder = false): FingerprintedContent {
  const files = form.images.map((image) => fileDigest(image.bytes));
  if (inAnyOrder) files.sort();
  return { fields: form.fields, batchId, files };
}

/** The fingerprint of `content`, which a study keeps: the same fingerprint, the same submission. */
export function fingerprintOfContent({ fields, batchId, files }: FingerprintedContent): string {
  return createHash('sha256').update(JSON.stringify({ fields, batchId, files })).digest('hex');
}

/** Identifies "the same submission": its fields and the bytes of every file, in order unless `inAnyOrder`. */
export function fingerprintOf(form: StudyForm, batchId: string | undefined, inAnyOrder = false): string {
  return fingerprintOfContent(contentOf(form, batchId, inAnyOrder));
}
