import type { BatchRecord, DeliveryRecord, StudyRecord } from '../store/records.js';
import { studyPath, webhookView } from '../studies/study-view.js';
import type { BatchView } from '../schemas/batch.schemas.js';

/** Path of a batch resource. */
export function batchPath(batchId: string): string {
  return `/v1/batches/${batchId}`;
}

/** Counts per study state; `queued` is what has neither started nor finished. */
export function batchCounts(batch: BatchRecord): BatchView['counts'] {
  const { studyCount: total, processingStudies: processing, doneStudies: done, failedStudies: failed } = batch;
  return { total, queued: Math.max(0, total - processing - done - failed), processing, done, failed };
}

function studyItem(study: StudyRecord): BatchView['studies']['items'][number] {
  return {
    studyId: study.id,
    ...(study.externalId ? { externalId: study.externalId } : {}),
    state: study.state,
    ...(study.state === 'failed' ? { failure: { reason: study.failureReason ?? 'unknown' } } : {}),
    links: { self: studyPath(study.id) },
  };
}

/** One page of a batch's studies, and the query of the next while more follow. */
export interface StudyPage {
  studies: readonly StudyRecord[];
  next?: string;
}

/** One page of a batch's studies as shown under `studies` in its view, and alone at its `links.studies`. */
export function studyPageView(page: StudyPage): BatchView['studies'] {
  return { items: page.studies.map(studyItem), ...(page.next ? { next: page.next } : {}) };
}

/** The batch with its counts and one page of its studies. */
export function batchView(batch: BatchRecord, page: StudyPage, delivery: DeliveryRecord | undefined): BatchView {
  const self = batchPath(batch.id);
  return {
    batchId: batch.id,
    ...(batch.externalId ? { externalId: batch.externalId } : {}),
    priority: batch.priority,
    state: batch.state,
    createdAt: batch.createdAt,
    ...(batch.closedAt ? { closedAt: batch.closedAt } : {}),
    ...(batch.completedAt ? { completedAt: batch.completedAt } : {}),
    counts: batchCounts(batch),
    studies: studyPageView(page),
    ...(delivery ? { webhook: webhookView(delivery) } : {}),
    links: { self, studies: `${self}/studies`, close: `${self}/close` },
  };
}
