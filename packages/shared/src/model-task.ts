import { Type, type Static } from '@sinclair/typebox';

/** The tasks a model can be trained for; mirrors `Task` of `@btd/model`. */
export const ModelTaskSchema = Type.Union([Type.Literal('tumor-binary'), Type.Literal('tumor-type')]);

/** `tumor-binary` (tumour or not) or `tumor-type` (which kind). */
export type ModelTask = Static<typeof ModelTaskSchema>;

/** Every task, in the order the worker runs them. */
export const MODEL_TASKS: readonly ModelTask[] = Object.freeze(['tumor-binary', 'tumor-type']);
