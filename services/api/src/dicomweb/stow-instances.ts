import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { isAnalysedModality, isDicom, type DicomHeader } from '@btd/model';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors/api-error.js';
import type { IntakeChecks } from '../intake/input-formats.js';
import { inspectUpload, type AcceptedImage, type UploadLimits } from '../intake/inspect-upload.js';
import type { StudyFields } from '../intake/read-study-form.js';
import type { SubmittedStudy } from '../schemas/study.schemas.js';
import { fileDigest } from '../studies/resume-submission.js';
import { submitStudy } from '../studies/submit-study.js';
import type { StowPart } from './stow-body.js';

/** Failure reasons of a STOW-RS response (DICOM PS3.18 table I.2-1; PS3.4 annex B). */
export const FailureReason = {
  processingFailure: 0x0110,
  sopClassNotSupported: 0x0122,
  outOfResources: 0xa700,
  doesNotMatchSopClass: 0xa900,
  cannotUnderstand: 0xc000,
  transferSyntaxNotSupported: 0xc122,
} as const;

/** What became of one instance of a STOW-RS request. */
export interface StowInstance {
  readonly index: number;
  readonly sopClassUid?: string;
  readonly sopInstanceUid?: string;
  readonly studyInstanceUid?: string;
  /** Set when it was stored and queued: the btd study it became part of (one image, or one per frame). */
  stored?: { studyId: string };
  failure?: { reason: number; comment: string };
}

/** Who stores, with which study fields, and what the request's URL and headers ask. */
export interface StowOptions {
  readonly clientId: string;
  readonly fields: StudyFields;
  /** From `/studies/{StudyInstanceUID}`: every instance must belong to it. */
  readonly studyInstanceUid?: string;
  /** The request's Idempotency-Key, if it sent one. */
  readonly idempotencyKey?: string;
  readonly limits: UploadLimits;
  readonly checks: IntakeChecks;
}

interface Candidate {
  instance: StowInstance;
  image: AcceptedImage;
}

/** The UIDs a DICOM header carries, for the response. */
function uidsOf(header: DicomHeader | undefined): Pick<StowInstance, 'sopClassUid' | 'sopInstanceUid' | 'studyInstanceUid'> {
  const { sopInstanceUid, studyInstanceUid } = header?.identifiers ?? {};
  return { ...(header?.sopClassUid ? { sopClassUid: header.sopClassUid } : {}), ...(sopInstanceUid ? { sopInstanceUid } : {}), ...(studyInstanceUid ? { studyInstanceUid } : {}) };
}

/** The STOW-RS failure reason for an intake refusal: an unsupported image is of another modality, or else in an encoding not read. */
function reasonFor(error: ApiError, header: DicomHeader | undefined): number {
  if (error.code === 'image_unsupported') return isAnalysedModality(header?.modality) ? FailureReason.transferSyntaxNotSupported : FailureReason.sopClassNotSupported;
  if (['file_too_large', 'image_too_large', 'too_many_images'].includes(error.code)) return FailureReason.outOfResources;
  return FailureReason.cannotUnderstand;
}

/**
 * Checks one part as `POST /v1/studies` checks a file; a refusal becomes the instance's failure. The
 * part is parsed once, on the intake threads: its UIDs for the answer (also that of a part refused), and
 * for a part to store its frames decoded, which the inspection then takes as they are.
 */
async function inspectPart(part: StowPart, options: StowOptions): Promise<Candidate | StowInstance> {
  const wrongType = part.contentType !== undefined && part.contentType.toLowerCase() !== 'application/dicom';
  const reading = isDicom(part.bytes) ? await options.checks.dicom.read(part.bytes, wrongType ? undefined : options.limits, options.checks.signal) : undefined;
  const header = reading?.header;
  const instance: StowInstance = { index: part.index, ...uidsOf(header) };
  const fail = (reason: number, comment: string): StowInstance => ({ ...instance, failure: { reason, comment } });
  if (wrongType) return fail(FailureReason.cannotUnderstand, `part ${part.index} is ${part.contentType}; send each instance as application/dicom`);
  let image: AcceptedImage;
  try {
    const filename = `${instance.sopInstanceUid ?? `instance-${part.index}`}.dcm`;
    image = await inspectUpload(reading?.bytes ?? part.bytes, filename, options.limits, options.checks, reading);
  } catch (error) {
    if (error instanceof ApiError) return fail(reasonFor(error, header), error.message);
    throw error;
  }
  if (image.format.mime !== 'application/dicom') return fail(FailureReason.cannotUnderstand, `part ${part.index} is ${image.format.label}, not a DICOM instance`);
  if (!instance.studyInstanceUid || !instance.sopInstanceUid) {
    return fail(FailureReason.doesNotMatchSopClass, `part ${part.index} has no ${instance.studyInstanceUid ? 'SOP' : 'Study'} Instance UID`);
  }
  if (options.studyInstanceUid && instance.studyInstanceUid !== options.studyInstanceUid) {
    return fail(FailureReason.doesNotMatchSopClass, `instance belongs to study ${instance.studyInstanceUid}, not to ${options.studyInstanceUid} of the URL`);
  }
  return { instance, image };
}

/**
 * The Idempotency-Key of one DICOM study's instances: the client's key with the study's UID, or
 * else one derived from the fields and the instances' content, so that a PACS retrying the same
 * request gets the same btd study back instead of a second one.
 */
function studyKey(studyInstanceUid: string, members: readonly Candidate[], options: StowOptions): string {
  // Hashed, not joined: a long key (up to 255 characters) cut to length would give two studies one key.
  if (options.idempotencyKey) return `stow-key:${createHash('sha256').update(JSON.stringify([options.idempotencyKey, studyInstanceUid])).digest('hex')}`;
  const content = members.map(({ image }) => fileDigest(image.bytes)).sort();
  const digest = createHash('sha256').update(JSON.stringify({ studyInstanceUid, fields: options.fields, content })).digest('hex');
  return `stow:${digest}`;
}

/** Submits one DICOM study's instances as one btd study, recording what became of each. */
async function submitGroup(ctx: ApiContext, studyInstanceUid: string, members: Candidate[], options: StowOptions, log: FastifyBaseLogger): Promise<void> {
  const failAll = (reason: number, comment: string) => {
    for (const { instance } of members) instance.failure = { reason, comment };
  };
  const form = { fields: options.fields, images: members.map(({ image }) => image) };
  try {
    const target = { clientId: options.clientId, idempotencyKey: studyKey(studyInstanceUid, members, options), filesInAnyOrder: true };
    const response = await submitStudy(ctx, form, target, log);
    const submitted = response.body as SubmittedStudy;
    for (const { instance } of members) instance.stored = { studyId: submitted.studyId };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    failAll(error.code === 'too_many_images' ? FailureReason.outOfResources : FailureReason.processingFailure, error.message);
  }
}

/**
 * Stores the instances of a STOW-RS request: each is checked as an upload is; those that pass are
 * grouped by Study Instance UID, and each group becomes one btd study (one inference job per
 * instance). An instance that fails does not stop the others; its reason is kept for the response.
 */
export async function storeInstances(ctx: ApiContext, parts: readonly StowPart[], options: StowOptions, log: FastifyBaseLogger): Promise<StowInstance[]> {
  const instances: StowInstance[] = [];
  const groups = new Map<string, Candidate[]>();
  const seen = new Set<string>();
  // Side by side: the frames decode on the intake threads; the answer keeps the request's order.
  const inspections = await Promise.all(parts.map(async (part) => inspectPart(part, options)));
  for (const inspected of inspections) {
    if (!('image' in inspected)) {
      instances.push(inspected);
      continue;
    }
    const { instance } = inspected;
    instances.push(instance);
    const sop = instance.sopInstanceUid!;
    if (seen.has(sop)) {
      instance.failure = { reason: FailureReason.processingFailure, comment: `SOP instance ${sop} is sent twice in this request` };
      continue;
    }
    seen.add(sop);
    const study = instance.studyInstanceUid!;
    groups.set(study, [...(groups.get(study) ?? []), inspected]);
  }
  for (const [studyInstanceUid, members] of groups) await submitGroup(ctx, studyInstanceUid, members, options, log);
  return instances;
}
