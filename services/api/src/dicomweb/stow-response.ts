import type { StowInstance } from './stow-instances.js';

/** A data set in the DICOM JSON model (PS3.18 annex F): attributes by tag, each with its VR and values. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

const TAG = {
  errorComment: '00000902',
  retrieveUrl: '00081190',
  failedSopSequence: '00081198',
  referencedSopSequence: '00081199',
  failureReason: '00081197',
  referencedSopClassUid: '00081150',
  referencedSopInstanceUid: '00081155',
} as const;

/** The answer to a STOW-RS request: its status and its Store Instances Response Module. */
export interface StowResponse {
  readonly statusCode: 200 | 202 | 409;
  readonly body: DicomJson;
  /** The btd studies the instances became, in the order first seen. */
  readonly studyIds: string[];
}

function references(instance: StowInstance): DicomJson {
  return {
    ...(instance.sopClassUid ? { [TAG.referencedSopClassUid]: { vr: 'UI', Value: [instance.sopClassUid] } } : {}),
    ...(instance.sopInstanceUid ? { [TAG.referencedSopInstanceUid]: { vr: 'UI', Value: [instance.sopInstanceUid] } } : {}),
  };
}

/**
 * Builds the STOW-RS response (PS3.18 10.5.3): the stored instances under Referenced SOP Sequence,
 * each with the URL of the btd study that reports its result; the others under Failed SOP Sequence
 * with a failure reason and, in Error Comment, what was wrong. 200 when every instance was stored,
 * 202 when some were, 409 when none was. With a single btd study, its URL is also the response's
 * Retrieve URL.
 */
export function stowResponse(instances: readonly StowInstance[], studyUrl: (studyId: string) => string): StowResponse {
  const stored = instances.filter((instance) => instance.stored && !instance.failure);
  const failed = instances.filter((instance) => instance.failure);
  const studyIds = [...new Set(stored.map((instance) => instance.stored!.studyId))];
  const body: DicomJson = {};
  if (studyIds.length === 1) body[TAG.retrieveUrl] = { vr: 'UR', Value: [studyUrl(studyIds[0]!)] };
  if (failed.length > 0) {
    body[TAG.failedSopSequence] = {
      vr: 'SQ',
      Value: failed.map((instance) => ({
        ...references(instance),
        [TAG.failureReason]: { vr: 'US', Value: [instance.failure!.reason] },
        [TAG.errorComment]: { vr: 'LO', Value: [instance.failure!.comment] },
      })),
    };
  }
  if (stored.length > 0) {
    body[TAG.referencedSopSequence] = {
      vr: 'SQ',
      Value: stored.map((instance) => ({ ...references(instance), [TAG.retrieveUrl]: { vr: 'UR', Value: [studyUrl(instance.stored!.studyId)] } })),
    };
  }
  const statusCode = failed.length === 0 ? 200 : stored.length > 0 ? 202 : 409;
  return { statusCode, body, studyIds };
}
