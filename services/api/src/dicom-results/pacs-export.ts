import { randomBytes } from 'node:crypto';
import { enqueueWebhook } from '@btd/shared';
import type { ApiContext } from '../context.js';
import type { DeliveryRecord, ImageRecord, StudyRecord } from '../store/records.js';
import { overlayCapture } from './overlay-capture.js';

/** The delivery event of a PACS export; it goes through the webhook queue, with its retries and attempts. */
export const PACS_EXPORT_EVENT = 'pacs.export';

/** Export ids follow from the study, so a completion seen twice exports once. */
export function pacsExportId(studyId: string): string {
  return `pacs-${studyId}`;
}

/** Images whose capture goes to the PACS: analysed, from a DICOM original (a JPEG or PNG has no patient or study to file under). */
function exportable(image: ImageRecord): boolean {
  return image.state === 'done' && image.contentType === 'application/dicom' && image.overlayKey !== undefined;
}

/** Queues the export of a finished study's captures, when a PACS is configured and the study has any. */
export async function queuePacsExport(ctx: ApiContext, study: StudyRecord, images: readonly ImageRecord[]): Promise<void> {
  const base = ctx.config.pacsStowUrl;
  if (!base || !images.some(exportable)) return;
  const id = pacsExportId(study.id);
  const delivery = { id, clientId: study.clientId, event: PACS_EXPORT_EVENT, url: `${base.replace(/\/+$/, '')}/studies`, body: JSON.stringify({ studyId: study.id }) };
  // Nothing for a study erased since it finished.
  if (await ctx.deliveries.createOnce(delivery, { studyId: study.id })) await enqueueWebhook(ctx.queues.webhooks, id);
}

/**
 * The STOW-RS request of an export (PS3.18 10.5): the captures of the study's exportable images, built
 * afresh from the stored overlays, as `multipart/related; type="application/dicom"`.
 */
export async function pacsExportRequest(ctx: ApiContext, delivery: DeliveryRecord): Promise<{ body: Buffer; headers: Record<string, string> }> {
  const { studyId } = JSON.parse(delivery.body) as { studyId: string };
  const study = await ctx.studies.get(studyId);
  if (!study) throw new Error(`study ${studyId} of export ${delivery.id} does not exist`);
  const images = (await ctx.studies.images(study)).filter(exportable);
  const boundary = `btd-${randomBytes(12).toString('hex')}`;
  // The frames of a multi-frame file share its original: read it once for all of them.
  const originals = new Map<string, Promise<Uint8Array>>();
  const loadOriginal = async (key: string) => {
    let original = originals.get(key);
    if (!original) originals.set(key, (original = ctx.objectStore.get(key)));
    return original;
  };
  const parts: Buffer[] = [];
  for (const image of images) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), await overlayCapture(ctx, study, image, loadOriginal), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  const authorization = ctx.config.pacsStowAuthorization;
  return {
    body: Buffer.concat(parts),
    headers: {
      'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      accept: 'application/dicom+json',
      ...(authorization ? { authorization } : {}),
    },
  };
}
