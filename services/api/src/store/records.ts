import type { ResultSummary, StudyPriority } from '@btd/shared';
import type { DicomImageInfo } from '../intake/input-formats.js';

/** Where a study stands. */
export type StudyState = 'queued' | 'processing' | 'done' | 'failed';

/** Where one image stands (`processing` is read live from the queue, never stored). */
export type ImageState = 'queued' | 'done' | 'failed';

/** A batch is `open` for new studies until closed, and `done` once every study finished. */
export type BatchState = 'open' | 'closed' | 'done';

export interface StudyRecord {
  id: string;
  clientId: string;
  externalId?: string;
  batchId?: string;
  priority: StudyPriority;
  callbackUrl?: string;
  state: StudyState;
  createdAt: string;
  completedAt?: string;
  failureReason?: string;
  imageIds: string[];
  doneCount: number;
  failedCount: number;
  /** Hash of the submitted fields and files; tells a retry from a conflicting reuse of an id. */
  fingerprint: string;
  /** Frames of multi-frame DICOM files that were left out of the analysis, and why; absent when none was. */
  skippedFrames?: SkippedFrame[];
  /** Redis key of the Idempotency-Key entry naming the study, for its erasure; absent without a key (or on older records). */
  idempotencyRecordKey?: string;
}

/** A frame of a multi-frame DICOM file that became no image of its study: blank (one grey level throughout, as the models see it). */
export interface SkippedFrame {
  filename: string;
  /** The file's SOP Instance UID, when it has one: with the frame number, what a PACS knows the frame by. */
  sopInstanceUid?: string;
  /** 1-based, as DICOM numbers frames. */
  frameNumber: number;
  numberOfFrames: number;
  reason: 'blank';
  /** The one grey level of its every pixel. */
  greyLevel: number;
}

export interface ImageRecord {
  id: string;
  studyId: string;
  clientId: string;
  filename: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
  /**
   * SHA-256 of the original file (hex), by which a retry of an unfinished submission stores an
   * original that never reached S3 from its own copy. Absent from records older than it.
   */
  sha256?: string;
  /** For a DICOM original, the identifiers the PACS knows it by, the slice's plane and, of a multi-frame original, the frame. */
  dicom?: DicomImageInfo;
  objectKey: string;
  state: ImageState;
  summary?: ResultSummary;
  overlayKey?: string;
  reason?: string;
  finishedAt?: string;
}

export interface BatchRecord {
  id: string;
  clientId: string;
  externalId?: string;
  priority: StudyPriority;
  callbackUrl?: string;
  state: BatchState;
  createdAt: string;
  closedAt?: string;
  completedAt?: string;
  studyCount: number;
  processingStudies: number;
  doneStudies: number;
  failedStudies: number;
}

export interface DeliveryRecord {
  id: string;
  clientId: string;
  /** e.g. `study.completed`, sent as `X-Btd-Event`. */
  event: string;
  url: string;
  /** The JSON body, fixed when the event happened so every attempt sends the same bytes. */
  body: string;
  attempts: number;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: string;
  failedAt?: string;
  /** Why its job failed for good: the last attempt's error, or that it stalled too often. */
  failedReason?: string;
}

type Flat = Record<string, string>;

/** Flattens a record into hash fields: strings as they are, everything else as JSON. */
export function toHash(record: object): Flat {
  const flat: Flat = {};
  for (const [field, value] of Object.entries(record)) {
    if (value === undefined) continue;
    flat[field] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return flat;
}

/** Reads hash fields back; `jsonFields` are parsed, the rest stay strings. */
export function fromHash<T>(flat: Flat, jsonFields: readonly string[]): T | undefined {
  if (Object.keys(flat).length === 0) return undefined;
  const record: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(flat)) {
    record[field] = jsonFields.includes(field) ? JSON.parse(value) : value;
  }
  return record as T;
}

/** A hash as a Lua script returns it (HGETALL inside a script gives field, value, field, value, ...). */
export function hashFromPairs(pairs: readonly string[]): Flat {
  const flat: Flat = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) flat[pairs[i]!] = pairs[i + 1]!;
  return flat;
}

/** Fields stored as JSON, per record type. */
export const JSON_FIELDS = {
  study: ['imageIds', 'doneCount', 'failedCount', 'skippedFrames'],
  image: ['width', 'height', 'bytes', 'dicom', 'summary'],
  batch: ['studyCount', 'processingStudies', 'doneStudies', 'failedStudies'],
  delivery: ['attempts', 'lastStatus'],
} as const;
