import { inferenceJobId } from '@btd/shared';
import type { ApiClient } from '../auth/api-keys.js';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors/api-error.js';
import type { ImageRecord, StudyRecord } from '../store/records.js';
import type { StudyView } from '../schemas/study.schemas.js';
import { pacsExportId } from '../dicom-results/pacs-export.js';
import { studyDeliveryId } from '../webhooks/completion-events.js';
import { studyView } from './study-view.js';

/** The study if it exists and belongs to the client; 404 otherwise (never 403: ids do not leak). */
export async function ownedStudy(ctx: ApiContext, client: ApiClient, studyId: string): Promise<StudyRecord> {
  const study = await ctx.studies.get(studyId);
  if (!study || study.clientId !== client.id) throw notFound('study', studyId);
  return study;
}

/** Queued images a worker holds right now, read from the inference queue. */
async function activeImages(ctx: ApiContext, images: readonly ImageRecord[]): Promise<Set<string>> {
  const queued = images.filter((image) => image.state === 'queued');
  const states = await Promise.all(queued.map((image) => ctx.queues.inference.getJobState(inferenceJobId(image.id))));
  return new Set(queued.filter((_, i) => states[i] === 'active').map((image) => image.id));
}

/** Everything `GET /v1/studies/:id` shows. */
export async function readStudyView(ctx: ApiContext, study: StudyRecord): Promise<StudyView> {
  const images = await ctx.studies.images(study);
  const active = study.state === 'queued' || study.state === 'processing' ? await activeImages(ctx, images) : new Set<string>();
  const [delivery, pacsExport] = await Promise.all([
    study.callbackUrl ? ctx.deliveries.get(studyDeliveryId(study.id)) : undefined,
    ctx.config.pacsStowUrl ? ctx.deliveries.get(pacsExportId(study.id)) : undefined,
  ]);
  return studyView(study, images, active, delivery, pacsExport);
}
