import { Type } from '@fastify/type-provider-typebox';
import { CallbackUrlSchema, IdempotencyHeadersSchema, PrioritySchema, commonErrors } from './common.schemas.js';

/** A DICOM UID: digits in dot-separated components, at most 64 characters. */
export const UidSchema = Type.String({ pattern: '^[0-9]+(\\.[0-9]+)*$', maxLength: 64 });

export const StowParamsSchema = Type.Object({ studyInstanceUid: UidSchema });

/** The study fields of `POST /v1/studies`, here as query parameters, since the body holds only instances. */
export const StowQuerySchema = Type.Object(
  {
    priority: Type.Optional(PrioritySchema),
    callbackUrl: Type.Optional(CallbackUrlSchema),
  },
  { additionalProperties: false },
);

/** The Store Instances Response Module in the DICOM JSON model. */
export const StowResponseSchema = Type.Object(
  {},
  {
    additionalProperties: true,
    description:
      'DICOM JSON (application/dicom+json): Referenced SOP Sequence (00081199) lists the stored instances, each with the URL of its btd study in Retrieve URL (00081190); Failed SOP Sequence (00081198) lists the others with Failure Reason (00081197) and Error Comment (00000902).',
  },
);

/** Schema parts of both STOW-RS routes. */
export const stowSchema = {
  consumes: ['multipart/related'],
  headers: IdempotencyHeadersSchema,
  querystring: StowQuerySchema,
  body: Type.String({ format: 'binary', description: 'multipart/related; type="application/dicom": one DICOM Part 10 instance per part.' }),
  response: {
    200: StowResponseSchema,
    202: StowResponseSchema,
    409: StowResponseSchema,
    ...commonErrors,
    406: Type.Ref('Error'),
    413: Type.Ref('Error'),
    415: Type.Ref('Error'),
  },
};
