import { Type } from '@fastify/type-provider-typebox';

/** Body of every 4xx and 5xx answer. */
export const ErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String({ description: 'HTTP reason phrase.' }),
    code: Type.String({ description: 'Stable machine-readable reason, e.g. image_truncated.' }),
    message: Type.String({ description: 'What is wrong, in words a person can act on.' }),
    file: Type.Optional(Type.String({ description: 'The uploaded file the error is about.' })),
  },
  { $id: 'Error' },
);

/** Error answers every authenticated route can give. */
export const commonErrors = {
  400: Type.Ref('Error'),
  401: Type.Ref('Error'),
  404: Type.Ref('Error'),
  503: Type.Ref('Error'),
};

/** What a route that takes a JSON body may also answer: a body over 1 MiB (413), or not JSON (415). */
export const jsonBodyErrors = {
  413: Type.Ref('Error'),
  415: Type.Ref('Error'),
};

export const IdPattern = '^[A-Za-z0-9_.-]{1,100}$';

export const PrioritySchema = Type.Enum(['stat', 'routine'], {
  description: '`stat` studies are analysed ahead of `routine` ones.',
});

export const ExternalIdSchema = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]*$',
  description: 'Your id for the study (e.g. accession number); resubmitting it returns the original study.',
});

export const CallbackUrlSchema = Type.String({
  format: 'uri',
  maxLength: 2048,
  pattern: '^https?://',
  description: 'URL that receives a signed POST when the study (or batch) completes.',
});

export const IdempotencyHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'Makes a retried submission return the first response instead of doing the work again.',
    }),
  ),
});

/** Every `/v1` route needs a bearer key; this marks it in the OpenAPI document. */
export const bearerAuth = [{ bearerAuth: [] }];
