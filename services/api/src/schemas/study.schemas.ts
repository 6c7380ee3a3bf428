import { Type, type Static } from '@fastify/type-provider-typebox';
import { CallbackUrlSchema, ExternalIdSchema, IdPattern, IdempotencyHeadersSchema, PrioritySchema, commonErrors } from './common.schemas.js';

export const StudyStateSchema = Type.Enum(['queued', 'processing', 'done', 'failed'], {
  description: 'queued: waiting for a worker; processing: being analysed; done; failed (see failure.reason).',
});

const Probabilities = Type.Record(Type.String(), Type.Number(), { description: 'Class name → probability.' });

export const ResultCautionSchema = Type.Object({
  code: Type.Enum(['plane_not_axial'], {
    description: 'plane_not_axial: a DICOM slice whose plane is not axial; the detector is meant for axial slices through the brain.',
  }),
  message: Type.String(),
});
export type ResultCaution = Static<typeof ResultCautionSchema>;

const ImageResultSchema = Type.Object({
  label: Type.String({ description: 'Verdict of the tumour-or-not model.' }),
  tumorProbability: Type.Number({ description: 'Probability that the image shows a tumour.' }),
  probabilities: Probabilities,
  type: Type.Object(
    {
      label: Type.String(),
      probabilities: Probabilities,
      agreesWithDetection: Type.Boolean({
        description:
          'Whether the type model also finds a tumour (a type) where the detection model does, and no_tumor where it does not. ' +
          'When false, do not rely on the type: the type model misses many tumours in scans unlike its training set.',
      }),
    },
    { description: 'Tumour-type model output.' },
  ),
  box: Type.Union([Type.Object({ x: Type.Number(), y: Type.Number(), width: Type.Number(), height: Type.Number() }), Type.Null()], {
    description: 'Location of the finding in the original image pixels, or null.',
  }),
  overlayUrl: Type.String({ description: 'Heatmap overlay PNG (needs the same bearer key).' }),
  overlayDicomUrl: Type.String({
    description: 'The same overlay as a DICOM Secondary Capture in the slice\'s study, for a PACS to file beside it (needs the same bearer key).',
  }),
  cautions: Type.Array(ResultCautionSchema, { description: 'What to know before relying on this result; empty when nothing is known against it.' }),
  models: Type.Array(Type.Object({ task: Type.String(), name: Type.String(), version: Type.String() })),
  timings: Type.Record(Type.String(), Type.Number(), {
    description:
      'Milliseconds per stage on the worker (downloadMs, preprocessMs, modelMs, heatmapMs, uploadMs), on the job\'s own clock, and totalMs, the whole job, which is at least their sum.',
  }),
});

const DicomIdentifiersSchema = Type.Object(
  {
    studyInstanceUid: Type.Optional(Type.String()),
    seriesInstanceUid: Type.Optional(Type.String()),
    sopInstanceUid: Type.Optional(Type.String()),
    accessionNumber: Type.Optional(Type.String()),
    plane: Type.Optional(
      Type.Enum(['axial', 'coronal', 'sagittal', 'oblique'], {
        description:
          'Plane of the slice, from Image Orientation (Patient). The detector is meant for axial slices through the brain: ' +
          'it calls most healthy sagittal and coronal slices from other sources a tumour.',
      }),
    ),
    frameNumber: Type.Optional(Type.Integer({ minimum: 1, description: 'Of a multi-frame original: the frame this image is, 1-based as DICOM numbers them.' })),
    numberOfFrames: Type.Optional(Type.Integer({ minimum: 2, description: 'Of a multi-frame original: its frames, each analysed as an image of the study but its blank ones (see skippedFrames).' })),
  },
  { description: 'For a DICOM original: the identifiers it carried, to file the result against the right instance, its plane, and its frame.' },
);

const SkippedFramesSchema = Type.Array(
  Type.Object({
    filename: Type.String(),
    sopInstanceUid: Type.Optional(Type.String({ description: "The file's SOP Instance UID, when it has one." })),
    frameNumber: Type.Integer({ minimum: 1, description: 'The frame, 1-based as DICOM numbers them.' }),
    numberOfFrames: Type.Integer({ minimum: 2 }),
    reason: Type.Enum(['blank'], { description: 'blank: the frame shows nothing, as the models see it: every pixel of one grey level, or under 1% of its pixels more than 20 grey levels from its background (greyLevel, the level of its border); they refuse such an image.' }),
    greyLevel: Type.Integer({ minimum: 0, maximum: 255 }),
  }),
  {
    description:
      'Frames of multi-frame DICOM files that were left out of the analysis (no image, no job, no result), and why: ' +
      'a blank padding frame of a series is skipped so that its other frames are analysed. Absent when no frame was skipped.',
  },
);

const ImageViewSchema = Type.Object({
  imageId: Type.String(),
  filename: Type.String(),
  contentType: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  dicom: Type.Optional(DicomIdentifiersSchema),
  state: StudyStateSchema,
  result: Type.Optional(ImageResultSchema),
  failure: Type.Optional(Type.Object({ reason: Type.String() })),
});

export const WebhookViewSchema = Type.Object({
  attempts: Type.Integer(),
  lastStatus: Type.Optional(Type.Integer({ description: 'HTTP status of the last attempt; 0 when no answer came.' })),
  lastError: Type.Optional(Type.String()),
  deliveredAt: Type.Optional(Type.String()),
  failedAt: Type.Optional(Type.String({ description: 'Set once the delivery is given up: every attempt failed, or the API processes sending it died too often.' })),
  failedReason: Type.Optional(Type.String({ description: 'Why the delivery was given up, set with failedAt.' })),
});

export const StudyVerdictSchema = Type.Object(
  {
    label: Type.Enum(['tumor', 'no_tumor', 'incomplete'], {
      description:
        'tumor: at least one image shows a tumour; no_tumor: every image was analysed and none does; ' +
        'incomplete: none of the analysed images does, but some could not be analysed (one of them might).',
    }),
    tumorProbability: Type.Optional(Type.Number({ description: 'The highest tumour probability of any analysed image.' })),
    imageId: Type.Optional(Type.String({ description: 'The image with that probability: the one to look at first.' })),
    tumorImages: Type.Integer({ description: 'Images called tumour.' }),
    analysedImages: Type.Integer(),
    failedImages: Type.Integer(),
    cautions: Type.Array(Type.String(), { description: 'The caution codes any analysed image carries (see an image result\'s cautions).' }),
  },
  { description: "The study's verdict over its images, once every image has finished." },
);
export type StudyVerdict = Static<typeof StudyVerdictSchema>;

export const StudyViewSchema = Type.Object(
  {
    studyId: Type.String(),
    externalId: Type.Optional(Type.String()),
    batchId: Type.Optional(Type.String()),
    priority: PrioritySchema,
    state: StudyStateSchema,
    createdAt: Type.String(),
    completedAt: Type.Optional(Type.String()),
    failure: Type.Optional(Type.Object({ reason: Type.String() })),
    verdict: Type.Optional(StudyVerdictSchema),
    images: Type.Array(ImageViewSchema),
    skippedFrames: Type.Optional(SkippedFramesSchema),
    webhook: Type.Optional(WebhookViewSchema),
    /** With PACS_STOW_URL set: the STOW-RS export of the heatmap captures of its DICOM images, once the study finished. */
    pacsExport: Type.Optional(WebhookViewSchema),
    links: Type.Object({ self: Type.String() }),
  },
);
export type StudyView = Static<typeof StudyViewSchema>;

export const SubmittedStudySchema = Type.Object(
  {
    studyId: Type.String(),
    externalId: Type.Optional(Type.String()),
    batchId: Type.Optional(Type.String()),
    state: StudyStateSchema,
    images: Type.Array(Type.Object({ imageId: Type.String(), filename: Type.String() })),
    skippedFrames: Type.Optional(SkippedFramesSchema),
    links: Type.Object({ self: Type.String() }),
  },
);
export type SubmittedStudy = Static<typeof SubmittedStudySchema>;

export const StudySummarySchema = Type.Object({
  studyId: Type.String(),
  externalId: Type.Optional(Type.String()),
  batchId: Type.Optional(Type.String()),
  state: StudyStateSchema,
  createdAt: Type.String(),
  links: Type.Object({ self: Type.String() }),
});
export type StudySummary = Static<typeof StudySummarySchema>;

// Unknown parameters are refused: a misspelt filter (`?externalID=`) must not list every study instead.
export const StudyListQuerySchema = Type.Object(
  {
    externalId: Type.Optional(ExternalIdSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    // Redis takes a 64-bit offset, written in digits: a larger one (1e23, which is an integer to JSON Schema) failed the list with a 500.
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 })),
  },
  { additionalProperties: false },
);

export const StudyListSchema = Type.Object({
  items: Type.Array(StudySummarySchema),
  total: Type.Integer(),
  next: Type.Optional(Type.String({ description: 'Query string of the next page.' })),
});

/** Documents the multipart form; the handler reads and checks the parts itself. */
export const StudyFormDocSchema = Type.Object({
  file: Type.Array(Type.String({ format: 'binary' }), {
    description: 'One or more JPEG, PNG or DICOM images (the type is read from the content, not the name).',
  }),
  externalId: Type.Optional(ExternalIdSchema),
  priority: Type.Optional(PrioritySchema),
  callbackUrl: Type.Optional(CallbackUrlSchema),
});

export const StudyParamsSchema = Type.Object({ id: Type.String({ pattern: IdPattern }) });

/** `DELETE /v1/studies/:id` answers 204 with no body once the study is erased. */
export const StudyErasedSchema = Type.Null({ description: 'The study is erased: no body.' });

export const ImageParamsSchema = Type.Object({ id: Type.String({ pattern: IdPattern }), imageId: Type.String({ pattern: IdPattern }) });

/** Schema parts shared by every route that takes a study upload (`POST /v1/studies`, batch chunks). */
export const studyUploadSchema = {
  consumes: ['multipart/form-data'],
  headers: IdempotencyHeadersSchema,
  body: StudyFormDocSchema,
  response: {
    202: SubmittedStudySchema,
    ...commonErrors,
    409: Type.Ref('Error'),
    413: Type.Ref('Error'),
    415: Type.Ref('Error'),
    422: Type.Ref('Error'),
  },
};
