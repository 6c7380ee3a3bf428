/**
 * The lists of a recorded evaluation that hold one entry per image: the images it got wrong, and
 * those it could not read. A version's view shows them; a listing of versions leaves them out, as
 * each can hold hundreds of entries for every evaluation a manifest records.
 */
export const PER_IMAGE_LISTS: readonly string[] = ['misclassified', 'rejected'];

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A manifest's `metrics` (one recorded evaluation per name) without their per-image lists. */
export function withoutPerImageLists(metrics: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metrics).map(([name, evaluation]) => [
      name,
      isRecord(evaluation) ? Object.fromEntries(Object.entries(evaluation).filter(([key]) => !PER_IMAGE_LISTS.includes(key))) : evaluation,
    ]),
  );
}
