import { isProbabilityBound, isRotationList, type ModelManifest } from '../model/manifest.js';
import { InvalidOptionsError } from './invalid-options.error.js';

/** How an artifact is to be served beyond the image and its mirror (see the manifest's fields). */
export interface ServingViewOptions {
  /** Rotated copies to average, in degrees; [] removes them. Absent: leave as they are. */
  testTimeRotations?: number[];
  /** Rotate only images whose top probability from the image and its mirror is below this. */
  testTimeRotationsBelow?: number;
}

/**
 * Refuses settings that no manifest may hold, before any work is done, with {@link InvalidOptionsError};
 * `rotations` are those the artifact has now (none for one being trained).
 */
export function checkServingViews(options: ServingViewOptions, rotations?: number[]): void {
  if (options.testTimeRotations && !isRotationList(options.testTimeRotations)) {
    throw new InvalidOptionsError(`test-time rotations must be non-zero angles of at most 45 degrees, got ${String(options.testTimeRotations)}`);
  }
  if (options.testTimeRotationsBelow !== undefined && !isProbabilityBound(options.testTimeRotationsBelow)) {
    throw new InvalidOptionsError(`the threshold for test-time rotations must be above 0 and at most 1, got ${String(options.testTimeRotationsBelow)}`);
  }
  if (options.testTimeRotationsBelow !== undefined && (options.testTimeRotations ?? rotations ?? []).length === 0) {
    throw new InvalidOptionsError('a threshold for test-time rotations needs rotations (--test-time-rotations)');
  }
}

/**
 * Writes the serving views into `manifest`. New rotations replace the old ones and their
 * threshold; a threshold alone keeps the rotations and needs some.
 */
export function applyServingViews(manifest: ModelManifest, options: ServingViewOptions): void {
  checkServingViews(options, manifest.testTimeRotations);
  if (options.testTimeRotations) {
    if (options.testTimeRotations.length > 0) manifest.testTimeRotations = [...options.testTimeRotations];
    else delete manifest.testTimeRotations;
    delete manifest.testTimeRotationsBelow;
  }
  if (options.testTimeRotationsBelow !== undefined) manifest.testTimeRotationsBelow = options.testTimeRotationsBelow;
}
