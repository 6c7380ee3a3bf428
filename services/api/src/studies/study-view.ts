import type { StoredResponse } from '../store/idempotency-store.js';
import type { ImageRecord, StudyRecord, DeliveryRecord } from '../store/records.js';
import type { ResultCaution, StudyVerdict, StudyView, SubmittedStudy } from '../schemas/study.schemas.js';

/** Path of a study resource. */
export function studyPath(studyId: string): string {
  return `/v1/studies/${studyId}`;
}

/** Path of an image's heatmap overlay; `.dcm` for the DICOM Secondary Capture of it. */
export function overlayPath(studyId: string, imageId: string, format: 'png' | 'dcm' = 'png'): string {
  return `${studyPath(studyId)}/images/${imageId}/overlay.${format}`;
}

/**
 * Whether the type model's own verdict (a tumour type, or `no_tumor`) says what the detection
 * model says. The two are trained on different datasets; when they disagree, the type is not to be
 * relied on.
 */
export function typeAgreesWithDetection(label: string, typeLabel: string): boolean {
  return (label === 'tumor') === (typeLabel !== 'no_tumor');
}

/**
 * What the reader of an image's result must know before relying on it. The detector is meant for
 * axial slices through the brain and calls most healthy sagittal and coronal slices from other sources
 * a tumour; a DICOM slice says its plane, so a result on another plane carries a caution.
 */
export function resultCautions(image: Pick<ImageRecord, 'dicom'>): ResultCaution[] {
  const plane = image.dicom?.plane;
  if (!plane || plane === 'axial') return [];
  const message = `${plane} slice: the detector is meant for axial slices through the brain and calls most healthy slices of other planes a tumour; do not rely on this answer`;
  return [{ code: 'plane_not_axial', message }];
}

/** Answer to a submission: the ids to poll. */
export function submittedView(study: StudyRecord, images: readonly Pick<ImageRecord, 'id' | 'filename'>[]): SubmittedStudy {
  return {
    studyId: study.id,
    ...(study.externalId ? { externalId: study.externalId } : {}),
    ...(study.batchId ? { batchId: study.batchId } : {}),
    state: study.state,
    images: images.map((image) => ({ imageId: image.id, filename: image.filename })),
    ...(study.skippedFrames ? { skippedFrames: study.skippedFrames } : {}),
    links: { self: studyPath(study.id) },
  };
}

/** The answer to an accepted submission (first or replayed): 202, where to poll, and the ids. */
export function acceptedResponse(study: StudyRecord, images: readonly Pick<ImageRecord, 'id' | 'filename'>[]): StoredResponse {
  return { statusCode: 202, location: studyPath(study.id), body: submittedView(study, images) };
}

function imageView(image: ImageRecord, active: boolean): StudyView['images'][number] {
  const base = {
    imageId: image.id,
    filename: image.filename,
    contentType: image.contentType,
    width: image.width,
    height: image.height,
    ...(image.dicom ? { dicom: image.dicom } : {}),
    state: image.state === 'queued' && active ? ('processing' as const) : image.state,
  };
  if (image.state === 'failed') return { ...base, failure: { reason: image.reason ?? 'unknown' } };
  const summary = image.summary;
  if (image.state !== 'done' || !summary) return base;
  const result = {
    label: summary.label,
    tumorProbability: summary.tumorProbability,
    probabilities: summary.probabilities,
    type: {
      label: summary.typeLabel,
      probabilities: summary.typeProbabilities,
      agreesWithDetection: typeAgreesWithDetection(summary.label, summary.typeLabel),
    },
    box: summary.box,
    overlayUrl: overlayPath(image.studyId, image.id),
    overlayDicomUrl: overlayPath(image.studyId, image.id, 'dcm'),
    cautions: resultCautions(image),
    models: summary.models,
    timings: summary.timings,
  };
  return { ...base, result };
}

/**
 * The study's verdict once every image has finished: a tumour if any analysed image shows one (an
 * image that failed cannot take that back), no tumour only if every image was analysed, else
 * incomplete; with the image of highest tumour probability, the one to look at first, and the
 * cautions any analysed image carries.
 */
export function studyVerdict(images: readonly Pick<ImageRecord, 'id' | 'state' | 'summary' | 'dicom'>[]): StudyVerdict | undefined {
  if (images.length === 0 || images.some((image) => image.state !== 'done' && image.state !== 'failed')) return undefined;
  const analysedImages = images.filter((image) => image.state === 'done' && image.summary);
  const analysed = analysedImages.map((image) => ({ imageId: image.id, ...image.summary! }));
  const cautions = [...new Set(analysedImages.flatMap((image) => resultCautions(image).map((caution) => caution.code)))];
  const tumorImages = analysed.filter((image) => image.label === 'tumor').length;
  const failedImages = images.length - analysed.length;
  const top = analysed.reduce<(typeof analysed)[number] | undefined>((best, image) => (!best || image.tumorProbability > best.tumorProbability ? image : best), undefined);
  return {
    label: tumorImages > 0 ? 'tumor' : failedImages > 0 ? 'incomplete' : 'no_tumor',
    ...(top ? { tumorProbability: top.tumorProbability, imageId: top.imageId } : {}),
    tumorImages,
    analysedImages: analysed.length,
    failedImages,
    cautions,
  };
}

/** Webhook progress as clients see it (never the URL, which may carry a token). */
export function webhookView(delivery: DeliveryRecord | undefined): StudyView['webhook'] {
  if (!delivery) return undefined;
  const { attempts, lastStatus, lastError, deliveredAt, failedAt, failedReason } = delivery;
  return { attempts, lastStatus, lastError, deliveredAt, failedAt, failedReason };
}

/**
 * The full study: state and, per image, the result. `activeImageIds` are images a worker is
 * on right now, which makes a queued study show as processing; `delivery` and `pacsExport` are its
 * webhook and its export of heatmap captures to the PACS, if any.
 */
export function studyView(
  study: StudyRecord,
  images: readonly ImageRecord[],
  activeImageIds: ReadonlySet<string>,
  delivery: DeliveryRecord | undefined,
  pacsExport?: DeliveryRecord,
): StudyView {
  const state = study.state === 'queued' && activeImageIds.size > 0 ? 'processing' : study.state;
  const verdict = studyVerdict(images);
  return {
    ...submittedView(study, []),
    priority: study.priority,
    state,
    createdAt: study.createdAt,
    ...(study.completedAt ? { completedAt: study.completedAt } : {}),
    ...(study.state === 'failed' ? { failure: { reason: study.failureReason ?? 'unknown' } } : {}),
    ...(verdict ? { verdict } : {}),
    images: images.map((image) => imageView(image, activeImageIds.has(image.id))),
    ...(delivery ? { webhook: webhookView(delivery) } : {}),
    ...(pacsExport ? { pacsExport: webhookView(pacsExport) } : {}),
  };
}
