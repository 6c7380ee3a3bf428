import { ApiError } from '../errors/api-error.js';
import type { StudyFields } from '../intake/read-study-form.js';
import type { ImageRecord, StudyRecord } from '../store/records.js';
import { fingerprintOfContent, type FingerprintedContent } from './fingerprint.js';

/** A submission under an externalId that another study holds: what its fingerprint covers, and the record built from it. */
export interface ConflictingSubmission {
  readonly content: FingerprintedContent;
  readonly study: Pick<StudyRecord, 'priority' | 'callbackUrl' | 'batchId'>;
}

/** The record fields a retry must repeat, by the name the client knows them by. */
const COMPARED_FIELDS = [
  ['priority', 'priority'],
  ['callbackUrl', 'callbackUrl'],
  ['batchId', 'batch'],
] as const;

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((value, i) => value === b[i]);

/**
 * The SHA-256 of each of a study's files, in submission order (the images of a multi-frame file
 * share its original); undefined when a record predates the digests.
 */
function filesOf(images: readonly Pick<ImageRecord, 'objectKey' | 'sha256'>[]): string[] | undefined {
  const files = new Map<string, string | undefined>();
  for (const image of images) if (!files.has(image.objectKey)) files.set(image.objectKey, image.sha256);
  const digests = [...files.values()];
  return digests.every((digest) => digest !== undefined) ? (digests as string[]) : undefined;
}

/**
 * What the holder's fingerprint covered, found again from its records: its priority given or left
 * to the default, its files in their order or sorted (as STOW-RS has them). Undefined when no such
 * content has its fingerprint (records that predate the digests).
 */
function holderContent(holder: StudyRecord, images: readonly Pick<ImageRecord, 'objectKey' | 'sha256'>[]): FingerprintedContent | undefined {
  const files = filesOf(images);
  if (!files) return undefined;
  const { externalId, priority, callbackUrl, batchId } = holder;
  // In the order the form's fields are read, which the fingerprint's JSON keeps.
  const given: StudyFields = { ...(externalId ? { externalId } : {}), priority, ...(callbackUrl ? { callbackUrl } : {}) };
  const defaulted: StudyFields = { ...(externalId ? { externalId } : {}), ...(callbackUrl ? { callbackUrl } : {}) };
  const candidates = [given, defaulted].flatMap((fields) => [files, [...files].sort()].map((order) => ({ fields, batchId, files: order })));
  return candidates.find((content) => fingerprintOfContent(content) === holder.fingerprint);
}

/** How the images differ, or undefined when they are the same. */
function imagesDiffer(theirs: readonly string[], ours: readonly string[]): string | undefined {
  if (sameList(theirs, ours)) return undefined;
  return sameList([...theirs].sort(), [...ours].sort()) ? 'the same images in another order' : 'different images';
}

/** The priority given in one submission and left in the other to the default, which it equals. */
function priorityGivenIn(theirs: StudyFields, ours: StudyFields): string | undefined {
  if ((theirs.priority === undefined) === (ours.priority === undefined)) return undefined;
  return theirs.priority === undefined ? 'its priority left to the default, which this request gives' : 'its priority given, which this request leaves to the default';
}

/** "a", "a and b", "a, b and c". */
function listed(names: readonly string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`;
}

/**
 * The 409 for a submission under an externalId that names a study submitted otherwise (another
 * fingerprint): a different priority or callbackUrl makes another submission as surely as different
 * images do, so the answer says which of these differ, for the client to tell a clash of ids from a
 * retry sent with other settings.
 */
export function externalIdConflict(holder: StudyRecord, holderImages: readonly Pick<ImageRecord, 'objectKey' | 'sha256'>[], ours: ConflictingSubmission): ApiError {
  const theirs = holderContent(holder, holderImages);
  const fields = COMPARED_FIELDS.filter(([field]) => holder[field] !== ours.study[field]).map(([, name]) => name);
  const fieldsPart = fields.length > 0 ? `a different ${listed(fields)}` : undefined;
  const priorityPart = theirs && !fields.includes('priority') ? priorityGivenIn(theirs.fields, ours.content.fields) : undefined;
  const others = [fieldsPart, priorityPart].filter((part) => part !== undefined);
  const images = theirs ? imagesDiffer(theirs.files, ours.content.files) : undefined;
  let what: string;
  if (images) what = [images, ...others].join(' and ');
  else if (theirs && others.length > 0) what = `the same images but ${others.join(' and ')}`;
  // Images the records cannot tell apart (they predate the digests): the fields that differ, if any.
  else what = fieldsPart ?? 'different images or fields';
  return new ApiError(409, 'external_id_conflict', `externalId already names study ${holder.id}, submitted with ${what}`);
}
