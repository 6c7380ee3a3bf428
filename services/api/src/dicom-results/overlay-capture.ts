import sharp from 'sharp';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors/api-error.js';
import type { ImageRecord, StudyRecord } from '../store/records.js';
import { resultCautions, typeAgreesWithDetection } from '../studies/study-view.js';
import { secondaryCapture } from './secondary-capture.js';

/** The result in one line, as Image Comments shows it in a PACS viewer. */
export function resultComment(image: Pick<ImageRecord, 'summary' | 'dicom'>): string {
  const summary = image.summary;
  if (!summary) return '';
  const parts = [`btd: ${summary.label} (tumour probability ${summary.tumorProbability.toFixed(3)})`];
  const agrees = typeAgreesWithDetection(summary.label, summary.typeLabel);
  parts.push(`type ${summary.typeLabel}${agrees ? '' : ' (the type model disagrees with the detection; do not rely on the type)'}`);
  for (const caution of resultCautions(image)) parts.push(caution.message);
  return `${parts.join('; ')}.`;
}

/** Reads an image's original; the images of a multi-frame file share one, which a caller may read once. */
export type OriginalLoader = (objectKey: string) => Promise<Uint8Array>;

/**
 * The heatmap overlay of an analysed image as a DICOM Secondary Capture (see `secondaryCapture`),
 * built from the stored overlay PNG, the image's result and, for a DICOM original, its header.
 *
 * @throws ApiError 404 while the image has no result
 */
export async function overlayCapture(ctx: ApiContext, study: StudyRecord, image: ImageRecord, loadOriginal: OriginalLoader = async (key) => ctx.objectStore.get(key)): Promise<Buffer> {
  if (!image.overlayKey || !image.summary) throw notFound('overlay of image', image.id);
  const [png, original] = await Promise.all([
    ctx.objectStore.get(image.overlayKey),
    image.contentType === 'application/dicom' ? loadOriginal(image.objectKey) : Promise.resolve(undefined),
  ]);
  const { data, info } = await sharp(png).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return secondaryCapture({
    studyId: study.id,
    imageId: image.id,
    instanceNumber: study.imageIds.indexOf(image.id) + 1,
    rgb: { width: info.width, height: info.height, data },
    ...(original ? { original } : {}),
    ...(image.dicom?.frameNumber ? { frameNumber: image.dicom.frameNumber } : {}),
    comment: resultComment(image),
    softwareVersions: image.summary.models.map((model) => `${model.name} ${model.version}`),
    createdAt: image.finishedAt ?? study.createdAt,
  });
}
