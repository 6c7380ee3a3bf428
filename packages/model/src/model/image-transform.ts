/** A rotation, zoom, mirror and shift about the centre of a square image. */
export interface SimilarityParams {
  /** Radians, counter-clockwise on screen for positive angles. */
  angle: number;
  /** Above 1 enlarges the content. */
  zoom: number;
  mirror: boolean;
  /** Pixels. */
  shiftX: number;
  shiftY: number;
}

/**
 * The 8-number projective transform that `tf.image.transform` applies for `params` on a
 * side × side image: output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2).
 */
export function similarityTransform(side: number, params: SimilarityParams): number[] {
  const c = (side - 1) / 2;
  const mirror = params.mirror ? -1 : 1;
  const cos = Math.cos(params.angle) / params.zoom;
  const sin = Math.sin(params.angle) / params.zoom;
  const a0 = cos * mirror;
  const a1 = -sin;
  const b0 = sin * mirror;
  const b1 = cos;
  return [a0, a1, c - a0 * c - a1 * c + params.shiftX, b0, b1, c - b0 * c - b1 * c + params.shiftY, 0, 0];
}
