/**
 * Deterministic object keys. Every object's key follows from ids alone, so a retried job
 * overwrites its own output instead of leaving a second copy.
 */

function segment(name: string, value: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(value) || value === '.' || value === '..') {
    throw new TypeError(`${name} is not a safe key segment: ${JSON.stringify(value)}`);
  }
  return value;
}

/** Ids that locate an uploaded image. */
export interface ImageIds {
  clientId: string;
  studyId: string;
  imageId: string;
}

/** Key of an uploaded original: `originals/<clientId>/<studyId>/<imageId>`. */
export function originalKey(ids: ImageIds): string {
  return `originals/${segment('clientId', ids.clientId)}/${segment('studyId', ids.studyId)}/${segment('imageId', ids.imageId)}`;
}

/** Prefix of all originals of one study (for clean-up of a half-stored submission). */
export function studyOriginalsPrefix(clientId: string, studyId: string): string {
  return `originals/${segment('clientId', clientId)}/${segment('studyId', studyId)}/`;
}

/** Prefix of every result object of one image. */
export function resultsPrefix(imageId: string): string {
  return `results/${segment('imageId', imageId)}/`;
}

/** Key of an image's result JSON, which holds every model's result: `results/<imageId>/result.json`. */
export function resultKey(imageId: string): string {
  return `${resultsPrefix(imageId)}result.json`;
}

/** Key of the heatmap overlay PNG: `results/<imageId>/overlay.png`. */
export function overlayKey(imageId: string): string {
  return `${resultsPrefix(imageId)}overlay.png`;
}
